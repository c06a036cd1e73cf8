//! Free-mail and disposable providers: their users are never one organization.

use super::RegistrableDomain;

/// Free-mail and disposable providers: never an organization.
pub struct FreeMail {
    exact: std::collections::HashSet<String>,
    /// `name.*` patterns: the registrable domain's first label.
    any_tld: std::collections::HashSet<String>,
}

const BUILTIN_FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "outlook.*",
    "hotmail.*",
    "live.*",
    "msn.com",
    "yahoo.*",
    "ymail.com",
    "rocketmail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.*",
    "aim.com",
    "gmx.*",
    "web.de",
    "t-online.de",
    "freenet.de",
    "mail.ru",
    "bk.ru",
    "inbox.ru",
    "list.ru",
    "yandex.*",
    "ya.ru",
    "rambler.ru",
    "proton.me",
    "protonmail.com",
    "protonmail.ch",
    "pm.me",
    "tutanota.com",
    "tuta.io",
    "zoho.com",
    "zohomail.com",
    "qq.com",
    "163.com",
    "126.com",
    "yeah.net",
    "sina.com",
    "sohu.com",
    "naver.com",
    "daum.net",
    "hanmail.net",
    "libero.it",
    "virgilio.it",
    "tiscali.it",
    "alice.it",
    "orange.fr",
    "wanadoo.fr",
    "free.fr",
    "laposte.net",
    "sfr.fr",
    "terra.com.br",
    "uol.com.br",
    "bol.com.br",
    "rediffmail.com",
    "fastmail.*",
    "hey.com",
    "mail.com",
    "email.com",
    "usa.com",
    "inbox.com",
    "hushmail.com",
    "gmx.net",
    "seznam.cz",
    "wp.pl",
    "o2.pl",
    "interia.pl",
    "onet.pl",
    "btinternet.com",
    "sky.com",
    "comcast.net",
    "verizon.net",
    "att.net",
    "sbcglobal.net",
    "bellsouth.net",
    "cox.net",
    "mailinator.com",
    "guerrillamail.com",
    "10minutemail.com",
    "temp-mail.org",
    "yopmail.com",
    "trashmail.com",
    "sharklasers.com",
    "getnada.com",
    "dispostable.com",
    "maildrop.cc",
    "mail-system.invalid",
];

impl FreeMail {
    pub fn new(extra: &[String]) -> Self {
        let mut exact = std::collections::HashSet::new();
        let mut any_tld = std::collections::HashSet::new();
        for d in BUILTIN_FREE_MAIL
            .iter()
            .map(|s| s.to_string())
            .chain(extra.iter().cloned())
        {
            let d = d.trim().to_lowercase();
            match d.strip_suffix(".*") {
                Some(name) => any_tld.insert(name.to_string()),
                None => exact.insert(d),
            };
        }
        FreeMail { exact, any_tld }
    }

    pub fn contains(&self, d: &RegistrableDomain) -> bool {
        let s = d.as_str();
        self.exact.contains(s)
            || s.split('.')
                .next()
                .is_some_and(|first| self.any_tld.contains(first))
    }
}
