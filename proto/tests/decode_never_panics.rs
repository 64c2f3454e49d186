//! Decoding never panics, whatever the bytes.

use proptest::prelude::*;
use proto::frame::read_frame;
use proto::{Hello, Request, Response};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_payloads(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = proto::codec::decode::<Request>(&bytes);
        let _ = proto::codec::decode::<Response>(&bytes);
        let _ = proto::codec::decode::<Hello>(&bytes);
    }

    #[test]
    fn arbitrary_frames(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_frame::<_, Request>(&mut &bytes[..]);
        let _ = read_frame::<_, Response>(&mut &bytes[..]);
    }

    #[test]
    fn framed_payloads_with_valid_prefix(payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut wire = (payload.len() as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(&payload);
        let _ = read_frame::<_, Request>(&mut &wire[..]);
    }

    #[test]
    fn mutated_valid_messages(pos in 0usize..64, val in any::<u8>()) {
        let req = Request::Rotate { name: "microreact".into(), value: proto::Secret::from_slice(b"token-value") };
        let mut bytes = proto::codec::encode(&req).unwrap();
        let i = pos % bytes.len();
        bytes[i] = val;
        let _ = proto::codec::decode::<Request>(&bytes);
    }
}
