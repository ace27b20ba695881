//! What a customer does to one endpoint from its page: enable or disable, resume or fail the
//! waiting ones while paused, delete (after a confirmation), rotate the secret, send a test,
//! recover failed deliveries, and resend one delivery.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::log_filter::{self};

use super::endpoint::{EndpointQuery, render_endpoint};
use super::flash;
use super::forms::Posted;
use super::{ConfirmPage, CustomerCtx, PortalError, customer_layout, customer_name, see_other};
use crate::domain::IdKind;
use crate::domain::{Endpoint, EndpointPatch};
use crate::http::AppState;
use crate::store::Store;

type State = web::Data<AppState>;

/// Checks the id, then runs `f` on the customer's own endpoint off the actix threads (another
/// customer's is 404); returns the id with what `f` gave.
async fn on_own_endpoint<T: Send + 'static>(
    st: &State,
    ctx: &CustomerCtx,
    path: web::Path<String>,
    f: impl FnOnce(&dyn Store, Endpoint) -> Result<T, PortalError> + Send + 'static,
) -> Result<(String, T), PortalError> {
    let id = IdKind::Endpoint.check(path.into_inner())?;
    let (cid, eid) = (ctx.customer_id.clone(), id.clone());
    let out = st
        .run(move |store| -> Result<_, PortalError> {
            let e = store
                .get_endpoint(&cid, &eid)?
                .ok_or(PortalError::NotFound)?;
            f(store, e)
        })
        .await?;
    Ok((id, out))
}

pub async fn toggle_endpoint(
    Posted { ctx, .. }: Posted<CustomerCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let (id, e) = on_own_endpoint(&st, &ctx, path, |s, e| {
        let patch = EndpointPatch {
            enabled: Some(!e.enabled),
            ..Default::default()
        };
        Ok(s.update_endpoint(&e.customer_id, &e.id, patch)?)
    })
    .await?;
    let msg = if e.enabled {
        "Endpoint enabled: it receives new events again."
    } else {
        "Endpoint disabled: it receives nothing until you enable it; deliveries that were waiting are marked failed."
    };
    flash(&st, &ctx.token, msg, None);
    Ok(see_other(&format!("/webhooks/{id}")))
}

/// "Resume now" on a paused endpoint: what waits goes, from a small start.
pub async fn resume(
    Posted { ctx, .. }: Posted<CustomerCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let (id, ()) = on_own_endpoint(&st, &ctx, path, |s, e| {
        s.change_pause(&e.id, Box::new(|_| None))?;
        Ok(())
    })
    .await?;
    flash(
        &st,
        &ctx.token,
        "Endpoint resumed: the deliveries that waited go now, a few at a time at first.",
        None,
    );
    Ok(see_other(&format!("/webhooks/{id}")))
}

/// "Fail the waiting ones" on a paused endpoint: never sent, `receiver_unavailable`.
pub async fn fail_waiting(
    Posted { ctx, .. }: Posted<CustomerCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let (id, n) = on_own_endpoint(&st, &ctx, path, |s, e| match e.pause {
        Some(_) => Ok(s.fail_all_waiting(&e.id)?),
        None => Ok(0),
    })
    .await?;
    let msg = format!(
        "{n} waiting deliveries marked failed (receiver unavailable); they were never sent. The endpoint stays paused until its receiver answers."
    );
    flash(&st, &ctx.token, &msg, None);
    Ok(see_other(&format!("/webhooks/{id}")))
}

pub async fn confirm_delete(
    ctx: CustomerCtx,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Endpoint.check(path.into_inner())?;
    let (cid, eid) = (ctx.customer_id.clone(), id.clone());
    let (name, ep) = st
        .run(move |store| -> Result<_, PortalError> {
            let name = customer_name(store, &cid)?;
            Ok((
                name,
                store
                    .get_endpoint(&cid, &eid)?
                    .ok_or(PortalError::NotFound)?,
            ))
        })
        .await?;
    super::ok_page(&ConfirmPage {
        layout: customer_layout(&st, &ctx, name, "Delete endpoint", "webhooks"),
        heading: "Delete this endpoint?".into(),
        message: format!(
            "{} will receive nothing more. Its delivery log goes too, and deliveries not yet sent are dropped. This cannot be undone.",
            ep.url
        ),
        action: format!("/webhooks/{id}/delete"),
        button: "Delete endpoint",
        cancel: format!("/webhooks/{id}"),
        fields: Vec::new(),
    })
}

pub async fn delete_endpoint(
    Posted { ctx, .. }: Posted<CustomerCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Endpoint.check(path.into_inner())?;
    let cid = ctx.customer_id.clone();
    st.run(move |s| s.delete_endpoint(&cid, &id)).await?;
    flash(&st, &ctx.token, "Endpoint deleted.", None);
    Ok(see_other("/webhooks"))
}

pub async fn rotate(
    Posted { ctx, form }: Posted<CustomerCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Endpoint.check(path.into_inner())?;
    let keep: u64 = form
        .get("keep_old_for_secs")
        .parse()
        .ok()
        .filter(|k| *k <= 604_800)
        .ok_or_else(|| PortalError::BadForm("Pick how long to keep the old secret.".into()))?;
    let (cid, eid) = (ctx.customer_id.clone(), id.clone());
    let e = st.run(move |s| s.rotate_secret(&cid, &eid, keep)).await?;
    let msg = if keep > 0 {
        "Secret rotated. Requests are signed with both secrets until the old one expires. The new secret:"
    } else {
        "Secret rotated; the old one no longer signs. The new secret:"
    };
    flash(&st, &ctx.token, msg, Some(e.secret));
    Ok(see_other(&format!("/webhooks/{id}")))
}

pub async fn send_test(
    Posted { ctx, form }: Posted<CustomerCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Endpoint.check(path.into_inner())?;
    let event = Some(form.get("event").to_owned()).filter(|e| !e.is_empty());
    st.charge_send(&ctx.customer_id).await?;
    let (cid, eid) = (ctx.customer_id.clone(), id.clone());
    st.run(move |s| s.send_test(&cid, &eid, event)).await?;
    flash(
        &st,
        &ctx.token,
        "Test event sent. Its delivery shows in the log below.",
        None,
    );
    Ok(see_other(&format!("/webhooks/{id}#log")))
}

pub async fn recover(
    Posted { ctx, form }: Posted<CustomerCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Endpoint.check(path.into_inner())?;
    let raw = form.get("since").trim();
    let since = log_filter::parse_local(raw);
    let Some(since) = since else {
        let msg = "Enter a date and time, like 2026-11-27T09:30.".to_owned();
        return render_endpoint(
            &st,
            &ctx,
            id,
            EndpointQuery::default(),
            None,
            Some(msg),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let (cid, eid) = (ctx.customer_id.clone(), id.clone());
    if form.get("confirm") != "1" {
        // First say how many, and ask.
        let count = st
            .run(move |s| {
                let count_only = crate::store::RecoverWindow {
                    since,
                    until: None,
                    max: 0,
                };
                s.recover(&cid, &eid, count_only)
            })
            .await?
            .left;
        if count == 0 {
            let msg = "No failed deliveries since then: nothing to resend.";
            flash(&st, &ctx.token, msg, None);
            return Ok(see_other(&format!("/webhooks/{id}#log")));
        }
        let per_min = st.limits.sends_per_min();
        let cid = ctx.customer_id.clone();
        let name = st.run(move |store| customer_name(store, &cid)).await?;
        let many = if count == 1 {
            "1 failed delivery".to_owned()
        } else {
            format!("{count} failed deliveries")
        };
        return super::ok_page(&ConfirmPage {
            layout: customer_layout(&st, &ctx, name, "Resend failed", "webhooks"),
            heading: format!("Resend {many}?"),
            message: format!(
                "{many} since {raw} did not succeed: each goes once more, the oldest first. Resends count toward your limit of {per_min} a minute; what it leaves for now stays failed until you resend again."
            ),
            action: format!("/webhooks/{id}/recover"),
            button: "Resend",
            cancel: format!("/webhooks/{id}#log"),
            fields: vec![("since", raw.to_owned()), ("confirm", "1".to_owned())],
        });
    }
    let r = st.recover(&cid, eid, since, None).await?;
    let mut msg = match r.made {
        0 => "No failed deliveries since then: nothing to resend.".to_owned(),
        1 => "1 failed delivery sent again.".to_owned(),
        n => format!("{n} failed deliveries sent again."),
    };
    if r.left > 0 {
        msg.push_str(&format!(
            " {} more wait for your send limit to refill: resend again in a minute.",
            r.left
        ));
    }
    flash(&st, &ctx.token, msg, None);
    Ok(see_other(&format!("/webhooks/{id}#log")))
}

pub async fn resend(
    Posted { ctx, form }: Posted<CustomerCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Delivery.check(path.into_inner())?;
    st.charge_send(&ctx.customer_id).await?;
    let cid = ctx.customer_id.clone();
    let d = st.run(move |s| s.resend_delivery(&cid, &id)).await?;
    flash(&st, &ctx.token, "Delivery sent again.", None);
    // Only back to one of the customer's own pages: never anywhere a crafted value points.
    let back = form.get("back");
    let known =
        |prefix: &str, kind: IdKind| back.strip_prefix(prefix).is_some_and(|id| kind.matches(id));
    let back = if known("/webhooks/", IdKind::Endpoint) || known("/events/", IdKind::Event) {
        back.to_owned()
    } else {
        format!("/webhooks/{}", d.endpoint_id)
    };
    Ok(see_other(&format!("{back}#log")))
}
