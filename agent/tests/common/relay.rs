//! A UDP relay on loopback between an agent and a gateway that can lose datagrams and
//! cut the link, to make a poor cellular link honestly: QUIC sees real loss and real
//! silence, nothing is mocked.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// A running relay; stops when dropped.
pub struct Relay {
    /// Where agents send to.
    pub addr: SocketAddr,
    loss_permille: Arc<AtomicU32>,
    cut: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lost(loss: &AtomicU32, cut: &AtomicBool) -> bool {
    cut.load(Ordering::SeqCst) || rand::random_range(0..1000) < loss.load(Ordering::SeqCst)
}

impl Relay {
    /// Relays between clients and `upstream`.
    pub async fn start(upstream: SocketAddr) -> Relay {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind relay"));
        let addr = front.local_addr().expect("relay address");
        let loss_permille = Arc::new(AtomicU32::new(0));
        let cut = Arc::new(AtomicBool::new(false));
        let (loss, cut2) = (loss_permille.clone(), cut.clone());
        let task = tokio::spawn(async move {
            let mut peers: HashMap<SocketAddr, (Arc<UdpSocket>, JoinHandle<()>)> = HashMap::new();
            let mut buf = vec![0u8; 65536];
            loop {
                let Ok((n, client)) = front.recv_from(&mut buf).await else {
                    break;
                };
                if lost(&loss, &cut2) {
                    continue;
                }
                let (up, _) = peers.entry(client).or_insert_with(|| {
                    let std = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind upstream");
                    std.set_nonblocking(true).expect("nonblocking");
                    let up = Arc::new(UdpSocket::from_std(std).expect("tokio socket"));
                    let (up2, front2, loss2, cut3) =
                        (up.clone(), front.clone(), loss.clone(), cut2.clone());
                    let back = tokio::spawn(async move {
                        let mut buf = vec![0u8; 65536];
                        while let Ok((n, _)) = up2.recv_from(&mut buf).await {
                            if !lost(&loss2, &cut3) {
                                let _ = front2.send_to(&buf[..n], client).await;
                            }
                        }
                    });
                    (up, back)
                });
                let _ = up.send_to(&buf[..n], upstream).await;
            }
            for (_, (_, back)) in peers {
                back.abort();
            }
        });
        Relay {
            addr,
            loss_permille,
            cut,
            task,
        }
    }

    /// Loses this many datagrams in a thousand, each way.
    pub fn set_loss(&self, permille: u32) {
        self.loss_permille.store(permille, Ordering::SeqCst);
    }

    /// Cuts the link (every datagram lost) or restores it.
    pub fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
    }
}
