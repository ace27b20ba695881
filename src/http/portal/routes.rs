//! The portal's routes: every page and form, by path, and its embedded assets.

use actix_web::web;

use super::{
    actions, admin, dashboard, delivery, endpoint, events, links, sign_in, support, webhooks,
};

/// The portal's routes and its embedded assets.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{get, post, resource};
    cfg.app_data(web::PayloadConfig::new(1024 * 1024))
        .service(resource("/static/{file:.*}").route(get().to(crate::http::assets::asset)))
        .service(resource("/").route(get().to(sign_in::home)))
        .service(resource("/login").route(post().to(sign_in::login)))
        .service(resource("/logout").route(post().to(sign_in::logout)))
        .service(
            resource("/portal-link/{token}")
                .route(get().to(links::open))
                .route(post().to(links::spend)),
        )
        .service(
            resource("/webhooks")
                .route(get().to(webhooks::webhooks))
                .route(post().to(webhooks::create_endpoint)),
        )
        .service(resource("/webhooks/{id}").route(get().to(endpoint::endpoint)))
        .service(resource("/webhooks/{id}/edit").route(post().to(endpoint::edit_endpoint)))
        .service(resource("/webhooks/{id}/toggle").route(post().to(actions::toggle_endpoint)))
        .service(resource("/webhooks/{id}/resume").route(post().to(actions::resume)))
        .service(resource("/webhooks/{id}/fail-waiting").route(post().to(actions::fail_waiting)))
        .service(
            resource("/webhooks/{id}/delete")
                .route(get().to(actions::confirm_delete))
                .route(post().to(actions::delete_endpoint)),
        )
        .service(resource("/webhooks/{id}/rotate").route(post().to(actions::rotate)))
        .service(resource("/webhooks/{id}/test").route(post().to(actions::send_test)))
        .service(resource("/webhooks/{id}/recover").route(post().to(actions::recover)))
        .service(resource("/deliveries/{id}").route(get().to(delivery::customer_delivery)))
        .service(resource("/deliveries/{id}/resend").route(post().to(actions::resend)))
        .service(resource("/events").route(get().to(events::events)))
        .service(resource("/events/{id}").route(get().to(events::event)))
        .service(resource("/admin").route(get().to(admin::console)))
        .service(resource("/admin/dashboard").route(get().to(dashboard::dashboard)))
        .service(resource("/admin/login").route(post().to(admin::login)))
        .service(resource("/admin/logout").route(post().to(admin::logout)))
        .service(resource("/admin/trigger").route(post().to(admin::trigger)))
        .service(resource("/admin/events/{id}").route(get().to(admin::event)))
        .service(resource("/admin/customers").route(post().to(admin::create_customer)))
        .service(resource("/admin/customers/{id}").route(get().to(support::customer)))
        .service(resource("/admin/customers/{id}/sessions").route(post().to(support::end_sessions)))
        .service(
            resource("/admin/customers/{id}/portal-link").route(post().to(support::portal_link)),
        )
        .service(resource("/admin/deliveries/{id}/resend").route(post().to(support::resend)))
        .service(
            resource("/admin/customers/{customer}/deliveries/{id}")
                .route(get().to(delivery::admin_delivery)),
        )
        .service(resource("/admin/customers/{id}/keys").route(post().to(admin::new_key)))
        .service(
            resource("/admin/customers/{id}/delete")
                .route(get().to(admin::confirm_delete))
                .route(post().to(admin::delete_customer)),
        )
        .service(resource("/admin/event-types").route(post().to(admin::create_event_type)));
}
