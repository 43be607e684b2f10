//! The JSON `{"logout": …}` reader on arbitrary bytes: must never panic.
#![no_main]

use aimharder_refresh::aimharder::api::is_logout;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = is_logout(data);
});
