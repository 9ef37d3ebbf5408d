//! `BaseUrl` parsing: never panics; what it accepts round-trips and joins.
#![no_main]

use infobip_auth::BaseUrl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for parsed in [BaseUrl::new(text), BaseUrl::insecure_loopback(text)] {
        if let Ok(base) = parsed {
            let again = BaseUrl::insecure_loopback(base.as_str()).expect("its own text parses");
            assert_eq!(again, base);
            let uri = base.join("/sms/2/text/advanced").expect("a plain path joins");
            assert!(base.matches(&uri));
        }
    }
});
