//! Bytes from the socket -> frames: decoding never panics, never allocates
//! past the announced-and-checked frame size, whatever the input
//! (DESIGN "Wire protocol": decoding never panics on any input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::frame::{encode_frame, read_frame};
use proto::{Hello, Request, Response};

/// Reads frames of type `T` until the input ends or is refused; whatever
/// decodes must encode again.
fn frames<T: serde::Serialize + serde::de::DeserializeOwned>(data: &[u8]) {
    let mut r = data;
    while let Ok(Some(value)) = read_frame::<_, T>(&mut r) {
        encode_frame(&value).expect("a decoded message encodes again");
    }
}

fuzz_target!(|data: &[u8]| {
    // As the daemon reads them (length prefix, then payload)...
    frames::<Hello>(data);
    frames::<Request>(data);
    frames::<Response>(data);
    // ...and the bare payload decoder.
    let _ = proto::codec::decode::<Hello>(data);
    let _ = proto::codec::decode::<Request>(data);
    let _ = proto::codec::decode::<Response>(data);
});
