//! The operator's console: customers (create, new key, delete), event types (list, add) and
//! the Trigger event form — the local mock's main button.

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use askama::Template;

use super::ConfirmPage;
use super::events::{EventView, event_page};
use super::flash;
use super::forms::Posted;
use super::sign_in::{login_page, sign_in, sign_out};
use super::views::{TypeOption, pretty_json, short_time};
use super::{ADMIN_COOKIE, AdminCtx, Layout, PortalError, html, see_other};
use crate::domain::EventType;
use crate::domain::IdKind;
use crate::domain::NewEvent;
use crate::domain::input::{validate_data, validate_event_type_name, validate_text};
use crate::http::AppState;
use crate::store::{PageQuery, StoreError};

type State = web::Data<AppState>;

pub struct CustomerRow {
    pub id: String,
    pub name: String,
    pub created: String,
}

#[derive(Default)]
pub struct TriggerForm {
    pub customer_id: String,
    pub event: String,
    pub data: String,
    pub error: Option<String>,
}

#[derive(Default)]
pub struct TypeForm {
    pub name: String,
    pub description: String,
    pub example: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct ConsolePage {
    layout: Layout,
    customers: Vec<CustomerRow>,
    types: Vec<TypeOption>,
    trigger: TriggerForm,
    customer_name: String,
    customer_error: Option<String>,
    type_form: TypeForm,
}

/// What the console shows besides its forms' state.
#[derive(Default)]
struct ConsoleForms {
    trigger: Option<TriggerForm>,
    customer_name: String,
    customer_error: Option<String>,
    type_form: TypeForm,
}

pub(super) fn layout(st: &AppState, ctx: &AdminCtx, title: &str) -> Layout {
    Layout::signed_in(
        st,
        &ctx.token,
        &ctx.csrf,
        "admin",
        "console",
        title,
        "operator".into(),
    )
}

pub async fn console(req: HttpRequest, st: State) -> Result<HttpResponse, PortalError> {
    let Ok(ctx) = AdminCtx::extract(&req).await else {
        return Ok(login_page(&st, true, StatusCode::OK, None));
    };
    let forms = ConsoleForms {
        trigger: super::query_param(&req, "type").map(|event| TriggerForm {
            event,
            ..Default::default()
        }),
        ..Default::default()
    };
    render_console(&st, &ctx, forms, StatusCode::OK).await
}

async fn render_console(
    st: &AppState,
    ctx: &AdminCtx,
    forms: ConsoleForms,
    status: StatusCode,
) -> Result<HttpResponse, PortalError> {
    let (customers, types) = st
        .run(move |store| -> Result<_, PortalError> {
            let mut customers = Vec::new();
            let mut before: Option<String> = None;
            loop {
                let page = store.list_customers(PageQuery {
                    before: before.as_deref(),
                    limit: 250,
                })?;
                customers.extend(page.data);
                match page.next {
                    Some(n) if customers.len() < 5000 => before = Some(n),
                    _ => break,
                }
            }
            customers.sort_by(|a, b| a.name.cmp(&b.name));
            Ok((customers, store.all_event_types()?))
        })
        .await?;
    let mut trigger = forms.trigger.unwrap_or_default();
    if !types.iter().any(|t| t.name == trigger.event) {
        trigger.event = types.first().map(|t| t.name.clone()).unwrap_or_default();
    }
    if trigger.data.is_empty()
        && let Some(t) = types.iter().find(|t| t.name == trigger.event)
    {
        trigger.data = pretty_json(&t.example);
    }
    if trigger.customer_id.is_empty() {
        trigger.customer_id = customers
            .iter()
            .find(|c| c.name == "default")
            .or(customers.first())
            .map(|c| c.id.clone())
            .unwrap_or_default();
    }
    let page = ConsolePage {
        layout: layout(st, ctx, "Operator console"),
        customers: customers
            .iter()
            .map(|c| CustomerRow {
                id: c.id.clone(),
                name: c.name.clone(),
                created: short_time(c.created_at),
            })
            .collect(),
        types: types.iter().map(|t| TypeOption::new(t, false)).collect(),
        trigger,
        customer_name: forms.customer_name,
        customer_error: forms.customer_error,
        type_form: forms.type_form,
    };
    Ok(html(status, &page))
}

pub async fn login(
    req: HttpRequest,
    st: State,
    body: web::Bytes,
) -> Result<HttpResponse, PortalError> {
    sign_in(&req, &st, &body, true).await
}

pub async fn logout(
    Posted { ctx, .. }: Posted<AdminCtx>,
    st: State,
) -> Result<HttpResponse, PortalError> {
    sign_out(&st, &ctx.token, ADMIN_COOKIE, "/admin").await
}

pub async fn trigger(
    Posted { ctx, form }: Posted<AdminCtx>,
    st: State,
) -> Result<HttpResponse, PortalError> {
    let mut t = TriggerForm {
        customer_id: form.get("customer_id").to_owned(),
        event: form.get("event").to_owned(),
        data: form.get("data").to_owned(),
        error: None,
    };
    let data = t.data.trim().to_owned();
    let problem = match serde_json::from_str::<serde_json::Value>(&data) {
        Ok(serde_json::Value::Object(_)) => validate_data(&data).err().map(|e| e.message),
        Ok(_) => Some("Data must be a JSON object, like {\"userId\": \"usr_1\"}.".to_owned()),
        Err(e) => Some(format!("Data is not valid JSON: {e}.")),
    };
    if let Some(p) = problem {
        t.error = Some(p);
        let forms = ConsoleForms {
            trigger: Some(t),
            ..Default::default()
        };
        return render_console(&st, &ctx, forms, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let new = NewEvent {
        customer_id: t.customer_id.clone(),
        event: t.event.clone(),
        data,
    };
    match st.store.ingest(vec![new], None).await {
        Ok(crate::store::Ingested::New(accepted)) => {
            st.metrics.events_ingested.inc();
            let a = &accepted[0];
            let msg = match a.deliveries {
                0 => format!(
                    "Event {} sent; no endpoint of this customer subscribes to it.",
                    a.event
                ),
                1 => format!("Event {} sent to 1 endpoint.", a.event),
                n => format!("Event {} sent to {n} endpoints.", a.event),
            };
            flash(&st, &ctx.token, msg, None);
            Ok(see_other(&format!("/admin/events/{}", a.id)))
        }
        Ok(crate::store::Ingested::Replayed(_)) => Ok(see_other("/admin")),
        Err(StoreError::Invalid(v)) => {
            t.error = Some(v.message);
            let forms = ConsoleForms {
                trigger: Some(t),
                ..Default::default()
            };
            render_console(&st, &ctx, forms, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn event(
    ctx: AdminCtx,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Event.check(path.into_inner())?;
    let (name, (event, ds)) = st
        .run(move |store| -> Result<_, PortalError> {
            let cid = store.event_customer(&id)?.ok_or(PortalError::NotFound)?;
            let name = store
                .get_customer(&cid)?
                .map(|c| c.name)
                .unwrap_or(cid.clone());
            Ok((
                name,
                store.get_event(&cid, &id)?.ok_or(PortalError::NotFound)?,
            ))
        })
        .await?;
    event_page(
        EventView {
            layout: layout(&st, &ctx, &event.event),
            customer: Some(name),
            resend_back: Some(format!("/admin/events/{}", event.id)),
            back_link: "/admin",
            empty_hint: "No endpoint of this customer subscribes to this event type.",
        },
        &event,
        &ds,
    )
}

pub async fn create_customer(
    Posted { ctx, form }: Posted<AdminCtx>,
    st: State,
) -> Result<HttpResponse, PortalError> {
    let name = form.get("name").trim().to_owned();
    let invalid = |msg: String, name: String| ConsoleForms {
        customer_name: name,
        customer_error: Some(msg),
        ..Default::default()
    };
    if let Err(e) = validate_text("name", &name, false) {
        let forms = invalid(e.message, name);
        return render_console(&st, &ctx, forms, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let n = name.clone();
    match st.run(move |s| s.create_customer(n)).await {
        Ok(made) => {
            let msg = format!(
                "Customer {} created. Its API key, shown only now:",
                made.customer.name
            );
            flash(&st, &ctx.token, msg, Some(made.key.plaintext));
            // To the message holding the key, not past it.
            Ok(see_other("/admin#flash"))
        }
        Err(StoreError::Invalid(v)) => {
            render_console(
                &st,
                &ctx,
                invalid(v.message, name),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn new_key(
    Posted { ctx, .. }: Posted<AdminCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Customer.check(path.into_inner())?;
    let (name, key) = st
        .run(move |store| -> Result<_, PortalError> {
            let c = store.get_customer(&id)?.ok_or(PortalError::NotFound)?;
            let key = store.create_api_key(&id)?.plaintext;
            Ok((c.name, key))
        })
        .await?;
    flash(
        &st,
        &ctx.token,
        format!("New API key for {name}, shown only now:"),
        Some(key),
    );
    Ok(see_other("/admin#flash"))
}

pub async fn confirm_delete(
    ctx: AdminCtx,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Customer.check(path.into_inner())?;
    let cid = id.clone();
    let c = st
        .run(move |store| store.get_customer(&cid)?.ok_or(PortalError::NotFound))
        .await?;
    super::ok_page(&ConfirmPage {
        layout: layout(&st, &ctx, "Delete customer"),
        heading: format!("Delete the customer {}?", c.name),
        message: "Its endpoints, events, deliveries and API keys are deleted and its portal sessions end. This cannot be undone.".into(),
        action: format!("/admin/customers/{id}/delete"),
        button: "Delete customer",
        cancel: "/admin#customers".into(),
        fields: Vec::new(),
    })
}

pub async fn delete_customer(
    Posted { ctx, .. }: Posted<AdminCtx>,
    st: State,
    path: web::Path<String>,
) -> Result<HttpResponse, PortalError> {
    let id = IdKind::Customer.check(path.into_inner())?;
    st.run(move |s| s.delete_customer(&id)).await?;
    flash(&st, &ctx.token, "Customer deleted.", None);
    Ok(see_other("/admin#customers"))
}

pub async fn create_event_type(
    Posted { ctx, form }: Posted<AdminCtx>,
    st: State,
) -> Result<HttpResponse, PortalError> {
    let mut tf = TypeForm {
        name: form.get("name").trim().to_owned(),
        description: form.get("description").trim().to_owned(),
        example: form.get("example").trim().to_owned(),
        error: None,
    };
    let example = if tf.example.is_empty() {
        "{}".to_owned()
    } else {
        tf.example.clone()
    };
    let checked = validate_event_type_name(&tf.name)
        .and_then(|_| validate_text("description", &tf.description, true))
        .map_err(|e| e.message)
        .and_then(
            |_| match serde_json::from_str::<serde_json::Value>(&example) {
                Ok(serde_json::Value::Object(_)) => validate_data(&example).map_err(|e| e.message),
                _ => Err("The example must be a JSON object.".to_owned()),
            },
        );
    if let Err(msg) = checked {
        tf.error = Some(msg);
        let forms = ConsoleForms {
            type_form: tf,
            ..Default::default()
        };
        return render_console(&st, &ctx, forms, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let et = EventType {
        name: tf.name.clone(),
        description: tf.description.clone(),
        example,
    };
    match st.run(move |s| s.create_event_type(et)).await {
        Ok(et) => {
            flash(
                &st,
                &ctx.token,
                format!("Event type {} added.", et.name),
                None,
            );
            Ok(see_other("/admin#event-types"))
        }
        Err(StoreError::Invalid(v)) => {
            tf.error = Some(v.message);
            let forms = ConsoleForms {
                type_form: tf,
                ..Default::default()
            };
            render_console(&st, &ctx, forms, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(e.into()),
    }
}
