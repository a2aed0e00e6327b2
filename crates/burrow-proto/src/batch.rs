//! Several encoded tunnel frames gathered into one WebSocket message.
//!
//! Why: each WebSocket message costs a TLS record and a socket write, and under concurrency
//! many small frames (one per request and response) are queued for the same link at once.
//! Spec section 3 lets one WebSocket frame carry several tunnel frames, so a writer sends
//! everything queued since its last write in one message, up to [`crate::MAX_WS_FRAME`]
//! bytes. Tunnel frames are never split or merged: the receiver's `FrameDecoder` sees the
//! same byte stream either way.

use bytes::{Bytes, BytesMut};

/// Frames for one WebSocket message, in queue order, at most `limit` bytes in all.
#[derive(Debug)]
pub struct Batch {
    frames: Vec<Bytes>,
    len: usize,
    limit: usize,
}

impl Batch {
    /// Starts a batch with `first`, which is always taken: a single frame is never larger
    /// than a WebSocket message may be (`2 * (MAX_MESSAGE + 2) <= MAX_WS_FRAME`).
    pub fn new(first: Bytes, limit: usize) -> Self {
        let len = first.len();
        let mut frames = Vec::with_capacity(8);
        frames.push(first);
        Batch { frames, len, limit }
    }

    /// Adds `frame` if the message stays within the limit; otherwise hands it back, to start
    /// the next batch.
    pub fn push(&mut self, frame: Bytes) -> Result<(), Bytes> {
        if self.len + frame.len() > self.limit {
            return Err(frame);
        }
        self.len += frame.len();
        self.frames.push(frame);
        Ok(())
    }

    /// Takes frames from `next` until it has none or one does not fit; answers the one that
    /// did not fit (it starts the next batch).
    pub fn fill(&mut self, mut next: impl FnMut() -> Option<Bytes>) -> Option<Bytes> {
        while let Some(frame) = next() {
            if let Err(frame) = self.push(frame) {
                return Some(frame);
            }
        }
        None
    }

    /// Bytes in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true (a batch starts with a frame); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The frames, in the order they were queued (their permits are released one by one).
    pub fn frames(&self) -> &[Bytes] {
        &self.frames
    }

    /// The message payload: the frames back to back. A single frame is returned without a
    /// copy.
    pub fn payload(&self) -> Bytes {
        if let [only] = self.frames.as_slice() {
            return only.clone();
        }
        let mut buf = BytesMut::with_capacity(self.len);
        self.frames.iter().for_each(|f| buf.extend_from_slice(f));
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode, FrameDecoder, Message, MAX_MESSAGE, MAX_PAYLOAD, MAX_WS_FRAME};

    fn frame(msg: &Message) -> Bytes {
        let mut buf = BytesMut::new();
        encode(msg, &mut buf).expect("encodes");
        buf.freeze()
    }

    #[test]
    fn frames_leave_in_order_in_one_payload() {
        let msgs: Vec<Message> = (1..=5)
            .map(|i| Message::data(1, "web", i, vec![i as u8; 100 * i as usize]))
            .collect();
        let mut batch = Batch::new(frame(&msgs[0]), MAX_WS_FRAME);
        for msg in &msgs[1..] {
            batch.push(frame(msg)).expect("fits");
        }
        assert_eq!(batch.frames().len(), 5);
        let payload = batch.payload();
        assert_eq!(payload.len(), batch.len());
        let mut decoder = FrameDecoder::new();
        decoder.push(&payload).expect("pushes");
        for msg in &msgs {
            assert_eq!(decoder.next_message().expect("decodes").as_ref(), Some(msg));
        }
        assert!(decoder.next_message().expect("decodes").is_none());
    }

    #[test]
    fn a_batch_never_exceeds_the_limit() {
        let big = frame(&Message::data(1, "web", 1, vec![7u8; MAX_PAYLOAD]));
        assert!(big.len() <= MAX_MESSAGE + 2);
        let mut batch = Batch::new(big.clone(), MAX_WS_FRAME);
        batch.push(big.clone()).expect("two maximal frames fit");
        let refused = batch.push(big.clone()).expect_err("a third does not");
        assert_eq!(refused, big, "the refused frame is handed back whole");
        assert!(batch.len() <= MAX_WS_FRAME);
        assert_eq!(batch.payload().len(), 2 * big.len());

        // Small frames fill up to the limit exactly, and not one byte more.
        let small = Bytes::from_static(&[0u8; 10]);
        let mut batch = Batch::new(small.clone(), 35);
        batch.push(small.clone()).expect("20");
        batch.push(small.clone()).expect("30");
        assert!(batch.push(small).is_err(), "40 > 35");
        assert_eq!(batch.len(), 30);
    }

    #[test]
    fn fill_takes_what_fits_and_hands_back_the_rest() {
        let frames: Vec<Bytes> = (0u8..6).map(|i| Bytes::from(vec![i; 10])).collect();
        let mut queue = frames.clone().into_iter();
        let mut batch = Batch::new(queue.next().expect("first"), 45);
        let left = batch.fill(|| queue.next());
        assert_eq!(
            batch.frames(),
            &frames[..4],
            "in queue order, 40 of 45 bytes"
        );
        assert_eq!(
            left.as_ref(),
            Some(&frames[4]),
            "the fifth starts the next batch"
        );
        assert_eq!(
            queue.next().as_ref(),
            Some(&frames[5]),
            "nothing taken past it"
        );

        let mut empty = std::iter::empty();
        let mut batch = Batch::new(frames[0].clone(), 45);
        assert!(batch.fill(|| empty.next()).is_none());
        assert_eq!(batch.frames().len(), 1);
    }

    #[test]
    fn a_single_frame_is_not_copied() {
        let only = frame(&Message::data(1, "web", 1, vec![1u8; 10]));
        let payload = Batch::new(only.clone(), MAX_WS_FRAME).payload();
        assert_eq!(payload.as_ptr(), only.as_ptr());
    }
}
