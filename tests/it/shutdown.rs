//! Graceful shutdown, driven in-process through the same path `serve` takes on
//! SIGTERM (`Running::serve_until`), so a request can be held in flight precisely.

use actix_web::HttpResponse;
use actix_web::web::{self, ServiceConfig};
use futures_util::StreamExt;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::support::{TestBroker, config_text, http};

/// Streams the body and answers once it is complete, so a request stays in flight for
/// as long as its client takes to send it. Tells the test when the handler started.
async fn slow_upload(
    started: web::Data<UnboundedSender<()>>,
    mut payload: web::Payload,
) -> HttpResponse {
    let _ = started.send(());
    let mut received = 0;
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(bytes) => received += bytes.len(),
            Err(_) => return HttpResponse::BadRequest().finish(),
        }
    }
    HttpResponse::Ok().body(format!("received {received} bytes"))
}

/// The probe route `/probe/upload`, and what tells the test its handler started.
pub(crate) fn upload_probe() -> (
    impl Fn(&mut ServiceConfig) + Clone + Send + 'static,
    UnboundedReceiver<()>,
) {
    let (started_tx, started) = unbounded_channel::<()>();
    let probe = move |cfg: &mut ServiceConfig| {
        cfg.app_data(web::Data::new(started_tx.clone()))
            .route("/probe/upload", web::post().to(slow_upload));
    };
    (probe, started)
}

/// An upload of 10 bytes held in flight after its first 5.
pub(crate) struct Upload {
    rest: UnboundedSender<Vec<u8>>,
    response: actix_web::rt::task::JoinHandle<reqwest::Result<reqwest::Response>>,
}

impl Upload {
    /// Sends the first half to `broker`'s probe and returns once its handler runs.
    pub(crate) async fn begin(broker: &TestBroker, started: &mut UnboundedReceiver<()>) -> Self {
        let (rest, body_rx) = unbounded_channel::<Vec<u8>>();
        let body = futures_util::stream::unfold(body_rx, |mut rx| async move {
            let chunk = rx.recv().await?;
            Some((Ok::<_, std::io::Error>(chunk), rx))
        });
        let upload = http()
            .post(broker.at("/probe/upload"))
            .header("content-length", "10")
            .body(reqwest::Body::wrap_stream(body));
        let response = actix_web::rt::spawn(upload.send());
        rest.send(b"hello".to_vec()).unwrap();
        started.recv().await.unwrap();
        Self { rest, response }
    }

    /// Sends the second half; the response.
    pub(crate) async fn finish(self) -> reqwest::Response {
        self.rest.send(b"world".to_vec()).unwrap();
        drop(self.rest);
        self.response.await.unwrap().unwrap()
    }
}

/// Whether `addr` refuses connections within 5 s.
pub(crate) async fn refuses_soon(addr: &str) -> bool {
    for _ in 0..250 {
        if std::net::TcpStream::connect(addr).is_err() {
            return true;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

#[actix_web::test]
async fn an_in_flight_request_finishes_after_shutdown_begins() {
    let (probe, mut started) = upload_probe();
    let mut broker = TestBroker::start_with(&config_text(), probe).await;
    let addr = broker.url.trim_start_matches("http://").to_owned();
    let upload = Upload::begin(&broker, &mut started).await;

    broker.begin_shutdown();
    assert!(
        refuses_soon(&addr).await,
        "still accepting connections after shutdown began"
    );

    let response = upload.finish().await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "received 10 bytes");
    broker.stopped().await.unwrap();
}
