//! The `/setrefresh` page parser on arbitrary bytes: must never panic or hang.
#![no_main]

use aimharder_refresh::internals::{parse_page, Page};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let html = String::from_utf8_lossy(data);
    if let Page::Refreshed(session) = parse_page(&html) {
        // A token it reports is never empty.
        use secrecy::ExposeSecret;
        assert!(!session.token.expose_secret().is_empty());
    }
});
