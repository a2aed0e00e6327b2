//! An upgraded connection (WebSocket) under its tunnel's limits: the bytes of each direction
//! pass the tunnel's bandwidth shaper like a body's frames do, and the client's connection
//! slot (`max_connections_per_client`) stays taken until the pipe ends. Without limits it is
//! tokio's plain `copy_bidirectional`.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::guard::ConnSlot;
use super::shaper::Shaper;

/// Bytes read at once: a frame of a shaped body is at most this much in practice too, so the
/// wait per read stays short and the rate even.
const CHUNK: usize = 16 * 1024;

/// What an upgraded connection carries along from its request's admission.
#[derive(Default, Clone)]
pub struct PipeLimits {
    /// Held until the pipe ends (shared with the request's log entry).
    pub slot: Option<Arc<ConnSlot>>,
    /// Client → device.
    pub upload: Option<Arc<Shaper>>,
    /// Device → client.
    pub download: Option<Arc<Shaper>>,
}

/// Copies both ways until both have ended (a direction's end shuts the other side's writing
/// half down, as `copy_bidirectional` does) or one fails.
pub async fn pipe<C, U>(client: &mut C, upstream: &mut U, limits: &PipeLimits) -> io::Result<()>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    if limits.upload.is_none() && limits.download.is_none() {
        return tokio::io::copy_bidirectional(client, upstream)
            .await
            .map(|_| ());
    }
    let (cr, cw) = tokio::io::split(client);
    let (ur, uw) = tokio::io::split(upstream);
    tokio::try_join!(
        shaped_copy(cr, uw, limits.upload.as_deref()),
        shaped_copy(ur, cw, limits.download.as_deref()),
    )
    .map(|_| ())
}

async fn shaped_copy<R, W>(mut r: R, mut w: W, shaper: Option<&Shaper>) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return w.shutdown().await;
        }
        if let Some(s) = shaper {
            let wait = s.reserve(n);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        w.write_all(&buf[..n]).await?;
        w.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn shaped_pipe_moves_every_byte_at_the_rate() {
        let (mut client, mut edge_side) = tokio::io::duplex(64 * 1024);
        let (mut up_side, mut device) = tokio::io::duplex(64 * 1024);
        let limits = PipeLimits {
            slot: None,
            upload: Some(Arc::new(Shaper::new(200_000))),
            download: None,
        };
        let piping = tokio::spawn(async move { pipe(&mut edge_side, &mut up_side, &limits).await });
        let data: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let started = Instant::now();
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.expect("write");
            client.shutdown().await.expect("shutdown");
            client
        });
        let mut got = Vec::new();
        device.read_to_end(&mut got).await.expect("read");
        let took = started.elapsed();
        assert_eq!(got, data, "byte-exact");
        // 150 kB at 200 kB/s with a 50 kB burst: about 0.5 s.
        assert!(
            took >= Duration::from_millis(400) && took <= Duration::from_secs(3),
            "{took:?}"
        );
        drop(device);
        drop(writer.await.expect("writer"));
        // Both ends gone: the pipe ends (how cleanly depends on who went first).
        let _ = tokio::time::timeout(Duration::from_secs(5), piping)
            .await
            .expect("the pipe ends with its ends");
    }
}
