//! `GET /1.0/backup` (admin): a consistent snapshot of the domain's store, streamed as a
//! `zonal-backup` file (`zonal_store::backup`: JSON lines, a header naming the store, the
//! SHA-256 of the whole in the last line). `zonal backup` saves it; `zonal restore` writes a
//! new store from it while the domain is stopped.
//!
//! The snapshot is one read transaction of the store (`Store::export`), walked on a blocking
//! thread and sent in chunks of 64 KiB as it is read, so a backup neither holds the whole store
//! in memory nor stops writes (they go on and are not in it). A failure or a client that goes
//! away ends the body early; the file then has no end line and every reader refuses it.

use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use tokio::sync::mpsc;
use zonal_store::backup::{write_backup, Header};

use crate::core::DomainCore;

/// Bytes sent per chunk.
const CHUNK: usize = 64 << 10;

type Chunk = Result<Bytes, io::Error>;

/// Sends what is written to the response body, a chunk at a time.
struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client stopped reading the backup"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The response body: the chunks as the blocking walk sends them.
struct Chunks(mpsc::Receiver<Chunk>);

impl futures_core::Stream for Chunks {
    type Item = Chunk;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        self.0.poll_recv(cx)
    }
}

impl DomainCore {
    /// A backup of the whole store, as a response body that streams while it is read.
    pub fn backup_body(&self) -> Body {
        let (tx, rx) = mpsc::channel::<Chunk>(4);
        let store = self.store.clone();
        let header = Header::new("domain", &self.info.name);
        tokio::task::spawn_blocking(move || {
            let out = ChannelWriter { tx: tx.clone(), buf: Vec::with_capacity(CHUNK) };
            match write_backup(store.as_ref(), &header, out) {
                Ok((_, end)) => tracing::info!(tables = end.tables, rows = end.rows, "backup sent"),
                Err(e) => {
                    tracing::warn!("the backup did not complete: {e}");
                    let _ = tx.blocking_send(Err(io::Error::other(e.message)));
                }
            }
        });
        Body::from_stream(Chunks(rx))
    }
}

#[cfg(test)]
mod tests {
    use crate::core::testing::{admin, open, WEB};
    use zonal_proto::wire::{CreateToken, RegisterService};

    #[tokio::test]
    async fn the_backup_body_reads_back_as_every_row_of_the_store() {
        let core = open();
        core.create_token(&CreateToken { role: "provider".into(), name: "acme".into(), ttl: None }).expect("token");
        core.register_service(&admin(), &RegisterService { serviceid: None, manifest: WEB.into() }).expect("register");
        let bytes = axum::body::to_bytes(core.backup_body(), usize::MAX).await.expect("body");
        let mut rows = Vec::new();
        let v = zonal_store::backup::read_backup(&bytes[..], |t, k, val| {
            rows.push((t.to_string(), k.to_string(), val.to_vec()));
            Ok(())
        })
        .expect("a valid backup");
        assert_eq!(v.header.store, "domain");
        let mut want = Vec::new();
        core.store
            .export(&mut |t, k, val| {
                want.push((t.to_string(), k.to_string(), val.to_vec()));
                Ok(())
            })
            .expect("export");
        assert_eq!(rows, want);
        assert!(want.iter().any(|(t, k, _)| t == "services" && k == "web"), "{want:?}");
        assert!(want.iter().any(|(t, _, _)| t == "tokens"), "{want:?}");
    }
}
