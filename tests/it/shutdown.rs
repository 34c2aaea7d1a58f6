//! Graceful shutdown, driven in-process through the same path `serve` takes on
//! SIGTERM (`Running::serve_until`), so a request can be held in flight precisely.

use actix_web::HttpResponse;
use actix_web::web::{self, ServiceConfig};
use futures_util::StreamExt;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

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

#[actix_web::test]
async fn an_in_flight_request_finishes_after_shutdown_begins() {
    let (started_tx, mut started) = unbounded_channel::<()>();
    let probe = move |cfg: &mut ServiceConfig| {
        cfg.app_data(web::Data::new(started_tx.clone()))
            .route("/probe/upload", web::post().to(slow_upload));
    };
    let mut broker = TestBroker::start_with(&config_text(), probe).await;
    let addr = broker.url.trim_start_matches("http://").to_owned();

    let (body_tx, body_rx) = unbounded_channel::<Vec<u8>>();
    let body = futures_util::stream::unfold(body_rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, std::io::Error>(chunk), rx))
    });
    let upload = http()
        .post(broker.at("/probe/upload"))
        .header("content-length", "10")
        .body(reqwest::Body::wrap_stream(body));
    let in_flight = actix_web::rt::spawn(upload.send());
    body_tx.send(b"hello".to_vec()).unwrap();
    started.recv().await.unwrap();

    broker.begin_shutdown();
    let mut refused = false;
    for _ in 0..250 {
        if std::net::TcpStream::connect(&addr).is_err() {
            refused = true;
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "still accepting connections after shutdown began");

    body_tx.send(b"world".to_vec()).unwrap();
    drop(body_tx);
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "received 10 bytes");
    broker.stopped().await.unwrap();
}
