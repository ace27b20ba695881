//! `POST /api/v1/backup`: a consistent copy of the data file, streamed while serving.

use std::io::Read;

use actix_web::{HttpResponse, web};

use super::{State, resource};
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::Admin;

const CHUNK: usize = 256 * 1024;
/// The live data file's device and inode: a client refuses to write the copy over it.
pub const DEVICE_HEADER: &str = "x-webhooks-data-device";
pub const INODE_HEADER: &str = "x-webhooks-data-inode";

#[utoipa::path(post, path = "/api/v1/backup", tag = "operator", security(("bearer" = [])),
    responses((status = 200, description = "A redb data file: put it in place of the data file, with the server stopped, to restore. The headers x-webhooks-data-device and x-webhooks-data-inode name the live data file, which a client must never overwrite with it.", content_type = "application/octet-stream"),
        (status = 401, body = ErrorBody),
        (status = 409, description = "not_supported: a PostgreSQL deployment is backed up with pg_dump", body = ErrorBody)))]
pub async fn backup(_: Admin, st: State) -> Result<HttpResponse, ApiError> {
    let identity = st.store.data_identity();
    let file = st
        .run(move |store| -> Result<_, ApiError> {
            let tmp = tempfile::NamedTempFile::new().map_err(ApiError::internal)?;
            store.backup_to(tmp.path())?;
            // The open handle outlives the name: nothing is left behind on disk.
            tmp.reopen().map_err(ApiError::internal)
        })
        .await?;
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let read = web::block(move || {
            let mut buf = vec![0u8; CHUNK];
            let n = file.read(&mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((file, buf))
        })
        .await;
        match read {
            Ok(Ok((_, buf))) if buf.is_empty() => None,
            Ok(Ok((file, buf))) => {
                Some((Ok::<_, actix_web::Error>(web::Bytes::from(buf)), Some(file)))
            }
            Ok(Err(e)) => Some((Err(actix_web::error::ErrorInternalServerError(e)), None)),
            Err(e) => Some((Err(actix_web::error::ErrorInternalServerError(e)), None)),
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            "content-disposition",
            "attachment; filename=\"webhooks-backup.redb\"",
        ))
        .insert_header((
            DEVICE_HEADER,
            identity.map_or(String::new(), |i| i.device.to_string()),
        ))
        .insert_header((
            INODE_HEADER,
            identity.map_or(String::new(), |i| i.inode.to_string()),
        ))
        .streaming(chunks))
}

/// The backup route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::post;
    cfg.service(resource("/api/v1/backup").route(post().to(backup)));
}

/// This file's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(backup))]
pub struct Doc;
