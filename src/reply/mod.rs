//! Reply: what mail clients write around a reply or a forward, and the
//! visible text of a reply — the text without its quoted history,
//! forwarded-original header blocks and signature, as a person reading a
//! ticket wants it. A leaf module over plain strings: parse calls it on each
//! text part, forward reads its markers.
//!
//! # Rules
//! * Plain text (`lines.rs`): quoted lines (`>`) go, with the attribution
//!   line above them ("On … wrote:", "Am … schrieb …:", "Le … a écrit :",
//!   "… 写道：", … in eleven languages, `words.rs`), also when a client
//!   wrapped it over two or three lines. From a separator line
//!   (`-----Original Message-----`, a forward's), an Outlook-style header
//!   block (From, then Sent/Date and Subject/To, in those languages;
//!   `markers.rs`) or a `-- ` signature delimiter on, everything goes; so do
//!   "Sent from my …" lines. Lines written between quoted lines (answers
//!   in the quote) stay. An attribution followed by unquoted text that
//!   names a date or address ends the visible text too (a quote whose `>`
//!   marks the client left out).
//! * HTML (`html.rs`): Gmail, Apple Mail, Thunderbird, Yahoo and Proton
//!   quote containers and Gmail/Thunderbird signature containers are
//!   removed, and everything from Outlook's reply header on, before the HTML
//!   becomes text; the text rules then apply to what is left.
//! * When nothing is left (a bare quote, a forward without a word of its
//!   own), the visible text is the whole text: the writer sent nothing else.
//!
//! Work is linear in the text's (or HTML's) length: one pass over lines or
//! tags, with bounded look-ahead.

mod html;
mod lines;
pub mod markers;
#[cfg(test)]
mod tests;
mod words;

use std::borrow::Cow;

pub use lines::Visible;

/// The visible text of a plain-text part.
pub fn of_text(text: &str) -> Visible {
    let v = lines::visible(text);
    Visible {
        text: v.text.filter(|t| !t.trim().is_empty()),
        block: v.block,
    }
}

/// The HTML with a line break before each block element, so that its text
/// keeps the lines a reader sees (the text conversion breaks lines only at
/// `<br>` and `</p>`).
pub fn html_lines(html: &str) -> Cow<'_, str> {
    html::lines(html)
}

/// The visible text of an HTML part, `text` being the whole part as text
/// (converted by the caller from [`html_lines`]).
pub fn of_html(html: &str, text: &str) -> Visible {
    let Some((stripped, quoted)) = html::strip(html) else {
        return of_text(text);
    };
    let converted = mail_parser::decoders::html::html_to_text(&html::lines(&stripped));
    let v = lines::visible(&converted);
    let text = match v.text {
        Some(t) if !t.trim().is_empty() => Some(t),
        // Everything was history: the whole text is what was sent.
        Some(_) => None,
        // Only a signature container went.
        None => Some(converted.trim().to_string()).filter(|t| !t.is_empty()),
    };
    Visible {
        text,
        block: quoted || v.block,
    }
}
