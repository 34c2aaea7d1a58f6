//! The OAuth endpoints' address list (`[server.oauth_addresses]`): middleware around
//! every `/oauth/*` route that judges the client address before the handler — and so
//! before any body, form, cookie or credential — is read. A refused address gets 403
//! `access_denied` (RFC 6749 JSON) and changes nothing: no code spent, no client
//! authenticated, no budget counted.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, web};

use super::protect;
use crate::flows::addresses::{Addresses, Origin};

pub async fn oauth_guard(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    // Fail closed: without the flow registered, nothing is let through.
    let Some(addresses) = req.app_data::<web::Data<Addresses>>() else {
        let response = HttpResponse::InternalServerError().finish();
        return Ok(req.into_response(response).map_into_right_body());
    };
    let origin = Origin {
        peer: req.peer_addr().map(|a| a.ip()),
        forwarded_for: req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok()),
        ..Origin::default()
    };
    if addresses.oauth(origin).is_err() {
        let response = protect::address_refused();
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
