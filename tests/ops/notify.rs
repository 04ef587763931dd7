//! Type=notify: READY=1 once the daemon serves, WATCHDOG=1 while it runs,
//! STOPPING=1 when it drains, through a stand-in for systemd's socket.
use std::time::Duration;

use tokio::net::UnixDatagram;

use crate::helpers::*;

async fn next(socket: &UnixDatagram) -> String {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(15), socket.recv(&mut buf))
        .await
        .expect("a notification")
        .expect("recv");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_tells_systemd_it_is_ready_alive_and_stopping() {
    let app = OpsApp::spawn().await;
    let path = app.config_path.with_file_name("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind");
    let mut command = app.command(&["run"]);
    command
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "100000");
    let daemon = Daemon::spawn(command);

    let ready = next(&socket).await;
    assert!(ready.contains("READY=1"), "{ready}");
    // The HTTP port is bound before READY=1 (the log line may still be in
    // the pipe when the datagram arrives).
    daemon.wait_output("connect server listening").await;
    assert!(next(&socket).await.contains("WATCHDOG=1"));

    daemon.signal("TERM");
    let mut seen = String::new();
    while !seen.contains("STOPPING=1") {
        seen = next(&socket).await;
    }
    let (status, out) = daemon.exit().await;
    assert_eq!(status.code(), Some(0), "{out}");
}
