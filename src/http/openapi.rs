//! The OpenAPI 3.1 document of the HTTP surface, generated from the code
//! (utoipa): every route is registered through `utoipa_axum::routes!` from a
//! handler's `#[utoipa::path]`, so the router and the document are built
//! from the same list and cannot drift. Request bodies are parsed by hand
//! ([`super::problem::Fields`], for precise errors); their schemas below
//! are checked against the field lists those parsers accept.
//! Served at `GET /v1/openapi.json`, committed as `docs/openapi.json`.

use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::OnceLock;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "intake",
        description = "Help-desk ingestion daemon: signed gateway contacts, the admin API, health and the status page. Every error is application/problem+json (RFC 9457).",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0")
    ),
    components(schemas(
        ProblemDoc, ContactBody, ContactPoints, AttachmentLink, MergeBody, OrganizationBody,
        DomainBody, TicketBody, TicketPatch, AgentBody
    )),
    modifiers(&AdminToken),
    tags(
        (name = "gateways", description = "signed contacts from voice, chat and SMS gateways"),
        (name = "admin", description = "the admin API, behind the bearer token `[http] admin_token`"),
        (name = "ops", description = "health, readiness, metrics and the status page")
    )
)]
pub struct ApiDoc;

struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The whole document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| super::api_router().split_for_parts().1)
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "ops",
    responses((status = 200, description = "this document", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> Response {
    Json(document()).into_response()
}

// ---------------------------------------------------------------- schemas
// Documentation of bodies parsed by `Fields`: the unit test below holds each
// schema's properties to the field list its parser accepts.

/// An RFC 9457 problem document.
#[derive(ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)]
pub struct ProblemDoc {
    /// Always `about:blank`.
    r#type: String,
    title: String,
    status: u16,
    /// What was wrong, precisely (a field's name and the rule it broke).
    detail: String,
}

/// How to reach a person: at least one of phone, email and handle.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ContactPoints {
    /// A phone number, E.164 or national in `[identities] default_phone_region`.
    phone: Option<String>,
    email: Option<String>,
    /// A messaging handle as `network:id` (e.g. `whatsapp:+14155550100`).
    handle: Option<String>,
    name: Option<String>,
}

/// An attachment the gateway links to.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AttachmentLink {
    /// An http(s) URL.
    url: String,
    filename: Option<String>,
    content_type: Option<String>,
}

/// A call, chat or SMS from a gateway (`POST /v1/contacts/{source}`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ContactBody {
    contact: ContactPoints,
    message: String,
    /// `voice`, `chat`, `sms`, … (default: the source's `default_channel`).
    channel: Option<String>,
    /// Messages of one conversation join one ticket (1 to 200 characters).
    conversation_id: Option<String>,
    subject: Option<String>,
    /// Default true.
    public: Option<bool>,
    /// RFC 3339 date-time.
    occurred_at: Option<String>,
    attachments: Option<Vec<AttachmentLink>>,
}

/// Merge the user in the path into `into`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MergeBody {
    /// The id of the surviving user.
    into: i64,
}

/// A new organization.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OrganizationBody {
    name: String,
    /// Registrable domains; free-mail domains and the desk's own are refused.
    domains: Option<Vec<String>>,
}

/// An agent's address.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AgentBody {
    address: String,
}

/// A domain for an organization.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DomainBody {
    domain: String,
}

/// A ticket an agent opens on an end user's behalf.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TicketBody {
    requester: Option<ContactPoints>,
    /// The agent's email; the requester when `requester` is absent.
    agent: Option<String>,
    subject: String,
    comment: String,
    /// Default true.
    public: Option<bool>,
}

/// What to change on a ticket: at least one of the two.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TicketPatch {
    public: Option<bool>,
    status: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn properties(name: &str) -> BTreeSet<String> {
        let doc = serde_json::to_value(document()).unwrap();
        doc["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name}"))
            .keys()
            .cloned()
            .collect()
    }

    fn set(fields: &[&str]) -> BTreeSet<String> {
        fields.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn body_schemas_name_exactly_the_fields_their_parsers_accept() {
        use crate::http::{admin, contact};
        assert_eq!(properties("ContactBody"), set(contact::CONTACT_FIELDS));
        assert_eq!(
            properties("ContactPoints"),
            set(contact::CONTACT_POINT_FIELDS)
        );
        assert_eq!(
            properties("AttachmentLink"),
            set(contact::ATTACHMENT_FIELDS)
        );
        assert_eq!(properties("MergeBody"), set(admin::MERGE_FIELDS));
        assert_eq!(
            properties("OrganizationBody"),
            set(admin::ORGANIZATION_FIELDS)
        );
        assert_eq!(properties("DomainBody"), set(admin::DOMAIN_FIELDS));
        assert_eq!(properties("TicketBody"), set(admin::TICKET_FIELDS));
        assert_eq!(properties("TicketPatch"), set(admin::TICKET_PATCH_FIELDS));
        assert_eq!(
            properties("AgentBody"),
            set(crate::http::agents::AGENT_FIELDS)
        );
    }

    #[test]
    fn the_document_is_openapi_3_1() {
        let doc = serde_json::to_value(document()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        assert!(doc["paths"]["/v1/contacts/{source}"]["post"].is_object());
    }
}
