//! The portal's static files (CSS, icons, the little JavaScript), embedded in the binary by
//! rust-embed (also in debug builds, so tests serve what ships).

use actix_web::{HttpResponse, web};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/static/"]
struct Static;

/// `/static/{file}`: CSS, icons and the little JavaScript, baked into the binary.
pub async fn asset(path: web::Path<String>) -> HttpResponse {
    match Static::get(path.as_str()) {
        Some(file) => HttpResponse::Ok()
            .content_type(file.metadata.mimetype())
            .insert_header(("cache-control", "public, max-age=3600"))
            .insert_header(("x-content-type-options", "nosniff"))
            .body(file.data.into_owned()),
        None => HttpResponse::NotFound().finish(),
    }
}
