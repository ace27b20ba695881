//! The portal as a browser without JavaScript sees it: a cookie-keeping visitor posting its
//! forms, a form's CSRF token, a customer's page as it renders.

use std::time::Duration;

use super::TestServer;

/// A cookie-keeping browser stand-in that does not follow redirects.
pub struct Visitor {
    pub base: String,
    agent: ureq::Agent,
    pub cookies: Vec<(String, String)>,
}

pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl Visitor {
    pub fn new(s: &TestServer) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Self {
            base: s.api.base.clone(),
            agent,
            cookies: Vec::new(),
        }
    }

    pub fn request(&mut self, method: &str, path: &str, form: Option<&[(&str, &str)]>) -> Answer {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header("cookie", jar.join("; "));
        }
        let body = form.map(|f| {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in f {
                s.append_pair(k, v);
            }
            s.finish()
        });
        if body.is_some() {
            req = req.header("content-type", "application/x-www-form-urlencoded");
        }
        let mut resp = self
            .agent
            .run(req.body(body.unwrap_or_default().into_bytes()).unwrap())
            .unwrap();
        let set_cookies: Vec<String> = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &set_cookies {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !v.is_empty() {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
        Answer {
            status: resp.status().as_u16(),
            location: resp
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned()),
            set_cookies,
            body: resp.body_mut().read_to_string().unwrap_or_default(),
        }
    }

    pub fn get(&mut self, path: &str) -> Answer {
        self.request("GET", path, None)
    }

    pub fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.request("POST", path, Some(form))
    }

    /// Signs in through the form at `page` (posting to `action` with `field`).
    pub fn sign_in(&mut self, page: &str, action: &str, field: &str, secret: &str) -> Answer {
        let login = self.get(page);
        let csrf = csrf_of(&login.body);
        self.post(action, &[("csrf", &csrf), (field, secret)])
    }
}

/// The first CSRF token in a page's forms.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &html[at + 19..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The customer's page at `path`, as the default customer signed in sees it.
pub fn page_of(s: &TestServer, path: &str) -> String {
    let mut v = Visitor::new(s);
    v.sign_in("/", "/login", "api_key", &s.key);
    let a = v.get(path);
    assert_eq!(a.status, 200, "{}", a.body);
    a.body
}
