//! Stored cookies and `Set-Cookie` headers from arbitrary input: reading
//! and merging must never panic, and whatever a merge leaves must be
//! storable and read back the same.
//!
//! Input: the stored JSON, a NUL byte, then one Set-Cookie header per line.
#![no_main]

use aimharder_refresh::internals::CookieJar;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (stored, headers) = text.split_once('\0').unwrap_or((&text, ""));
    let stored = serde_json::from_str(stored).unwrap_or(serde_json::Value::Null);
    let Ok(mut jar) = CookieJar::from_json(&stored) else {
        return;
    };
    let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let from = "https://mygym.aimharder.com/api/tokenUpdate".parse().unwrap();
    jar.merge_set_cookies(headers.lines(), &from, now);
    let written = jar.to_json();
    let again = CookieJar::from_json(&written).expect("a merged jar is storable");
    assert_eq!(again.to_json(), written);
    for to in ["https://aimharder.com/setrefresh", "https://mygym.aimharder.com/"] {
        let _ = jar.header_for(&to.parse().unwrap());
    }
});
