//! Notification templates: minijinja, compiled when the configuration loads,
//! so a template error is a configuration error and never a send-time one.

use minijinja::Environment;

/// Names of one notification's compiled templates.
#[derive(Debug, Clone)]
pub struct TplRef {
    subject: String,
    text: String,
    html: Option<String>,
}

/// Every trigger template, compiled.
#[derive(Debug, Default)]
pub struct Templates {
    env: Environment<'static>,
}

/// Used when an action gives no subject.
pub const DEFAULT_SUBJECT: &str = "{{ ticket.subject }}";

impl Templates {
    /// Compile one action's templates under the id `id`.
    pub fn add(
        &mut self,
        id: &str,
        subject: Option<String>,
        inline: Option<String>,
        file: Option<String>,
        html: Option<String>,
        html_file: Option<String>,
    ) -> Result<TplRef, String> {
        let text = pick("template", inline, file)?.ok_or("needs template or template_file")?;
        let html = pick("html_template", html, html_file)?;
        let subject = subject.unwrap_or_else(|| DEFAULT_SUBJECT.into());
        if subject.contains(['\r', '\n']) {
            return Err("subject must be one line".into());
        }
        let r = TplRef {
            subject: format!("{id}.subject"),
            text: format!("{id}.txt"),
            html: html.as_ref().map(|_| format!("{id}.html")),
        };
        self.compile(&r.subject, subject, "subject")?;
        self.compile(&r.text, text, "template")?;
        if let (Some(n), Some(h)) = (&r.html, html) {
            self.compile(n, h, "html_template")?;
        }
        Ok(r)
    }

    fn compile(&mut self, name: &str, src: String, what: &str) -> Result<(), String> {
        self.env
            .add_template_owned(name.to_string(), src)
            .map_err(|e| format!("{what}: {}", detail(&e)))?;
        // Render once against sample data so unknown filters and bad calls
        // surface at load time too.
        let t = self
            .env
            .get_template(name)
            .map_err(|e| format!("{what}: {}", detail(&e)))?;
        t.render(sample())
            .map_err(|e| format!("{what}: {}", detail(&e)))?;
        Ok(())
    }

    /// Render (subject, text, html) for `ctx`.
    pub fn render(
        &self,
        r: &TplRef,
        ctx: &impl serde::Serialize,
    ) -> Result<(String, String, Option<String>), minijinja::Error> {
        let one = |n: &str| self.env.get_template(n)?.render(ctx);
        let subject = one(&r.subject)?
            .replace(['\r', '\n'], " ")
            .trim()
            .to_string();
        let text = one(&r.text)?;
        let html = r.html.as_deref().map(one).transpose()?;
        Ok((subject, text, html))
    }
}

fn pick(
    what: &str,
    inline: Option<String>,
    file: Option<String>,
) -> Result<Option<String>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(format!("give {what} or {what}_file, not both")),
        (Some(s), None) => Ok(Some(s)),
        (None, Some(f)) => std::fs::read_to_string(&f)
            .map(Some)
            .map_err(|e| format!("{what}_file {f:?}: {e}")),
        (None, None) => Ok(None),
    }
}

fn detail(e: &minijinja::Error) -> String {
    // minijinja's message names the template and line ("in t0a0.txt:3").
    e.to_string()
}

fn sample() -> minijinja::Value {
    minijinja::context! {
        ticket => minijinja::context! { id => 1, tag => "[#1]", subject => "subject", status => "new", url => "https://desk.example/1" },
        requester => minijinja::context! { name => "Name", email => "name@example.com" },
        organization => minijinja::context! { name => "Org" },
        comment => minijinja::context! { body => "body", full_body => "body\n> quote" },
    }
}
