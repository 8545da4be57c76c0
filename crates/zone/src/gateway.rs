//! The zone gateway (FUSION §2.9): one TCP listener per public endpoint of a service. For
//! each new connection it asks the zone for an instance with a free slot (by the zone's
//! balancing policy, see [`ZoneCore::gateway_pick`]), connects to it and then only moves
//! bytes: the connection stays on that instance until either side closes it.
//!
//! The gateway counts its open sessions per instance itself, synchronously with the
//! choice, so a burst of connections can never exceed an instance's slots while slot
//! reports are still on their way. Decommissioned instances are never chosen; their open
//! sessions run to their end. A connection for which no instance has a free slot is told
//! `busy: …` (the workload's own refusal line) and closed.
//!
//! Design choice: one task per session, `tokio::io::copy` in each direction (see [`relay`]
//! for why not `copy_bidirectional`); the kernel does the rest. Splicing (zero-copy) would
//! save one copy per byte and is left for when the benchmark says it matters.

use std::net::SocketAddr;
use std::sync::Weak;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::core::ZoneCore;

/// How long a connection to an instance may take before the gateway tries another one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How many instances a connection is tried on before it is refused.
const ATTEMPTS: usize = 3;

/// Opens the gateway of `service`'s port `port` on an ephemeral loopback port.
pub(crate) fn listen(zone: Weak<ZoneCore>, service: String, port: String) -> Result<(SocketAddr, AbortHandle), String> {
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(|e| e.to_string())?;
    std_listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let listener = TcpListener::from_std(std_listener).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let task = tokio::spawn(accept_loop(zone, service, port, listener));
    Ok((addr, task.abort_handle()))
}

async fn accept_loop(zone: Weak<ZoneCore>, service: String, port: String, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(proxy(zone.clone(), service.clone(), port.clone(), stream));
            }
            // Out of file descriptors, typically: wait instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// A counted session: released when dropped, however the session ends.
struct Lease {
    zone: Weak<ZoneCore>,
    instance: String,
    /// The instance's port the session went to (one per configuration).
    port: u16,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(z) = self.zone.upgrade() {
            z.gateway_release(&self.instance, self.port);
        }
    }
}

/// Moves bytes both ways until the instance's side ends. A client that stops sending only
/// half-closes towards the instance (it may still be waiting for the answer); an instance
/// that closes (or dies) ends the session at once. `copy_bidirectional` would wait for the
/// client's side too, keeping the slot of a dead instance counted until the client noticed.
async fn relay(client: &mut TcpStream, backend: &mut TcpStream) {
    let (mut cr, mut cw) = client.split();
    let (mut br, mut bw) = backend.split();
    let up = async {
        let _ = tokio::io::copy(&mut cr, &mut bw).await;
        let _ = bw.shutdown().await;
        std::future::pending::<()>().await
    };
    let down = async {
        let _ = tokio::io::copy(&mut br, &mut cw).await;
        let _ = cw.shutdown().await;
    };
    tokio::select! {
        _ = down => {}
        _ = up => {}
    }
}

async fn proxy(zone: Weak<ZoneCore>, service: String, port: String, mut client: TcpStream) {
    let _ = client.set_nodelay(true);
    let mut excluded: Vec<String> = Vec::new();
    while excluded.len() < ATTEMPTS {
        let picked = match zone.upgrade() {
            Some(z) => z.gateway_pick(&service, &port, &excluded),
            None => return,
        };
        let Some(picked) = picked else { break };
        let lease = Lease { zone: zone.clone(), instance: picked.instance.clone(), port: picked.addr.port() };
        let started = Instant::now();
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(picked.addr)).await {
            Ok(Ok(mut backend)) => {
                if let Some(z) = zone.upgrade() {
                    z.gateway_latency(&picked.instance, started.elapsed());
                }
                let _ = backend.set_nodelay(true);
                relay(&mut client, &mut backend).await;
                drop(lease);
                return;
            }
            _ => {
                if let Some(z) = zone.upgrade() {
                    z.gateway_latency(&picked.instance, CONNECT_TIMEOUT);
                }
                tracing::debug!(instance = picked.instance, addr = %picked.addr, "gateway cannot reach the instance");
                excluded.push(picked.instance.clone());
            }
        }
    }
    if let Some(z) = zone.upgrade() {
        z.gateway_rejected(&service);
    }
    let _ = client.write_all(b"busy: no free session slots in this zone\n").await;
    let _ = client.shutdown().await;
}
