//! The JSON answer readers (`{"logout": …}`, `{"newToken": …}`, whoami's
//! `{"data": […]}`) on arbitrary bytes: must never panic, and a token they
//! report is never blank.
#![no_main]

use aimharder_refresh::internals::{is_logout, new_token, whoami_members};
use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret;

fuzz_target!(|data: &[u8]| {
    let _ = is_logout(data);
    let _ = whoami_members(data);
    if let Some(token) = new_token(data) {
        assert!(!token.expose_secret().trim().is_empty());
    }
});
