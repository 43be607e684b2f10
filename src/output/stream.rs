//! A JSON document whose `sessions` array is written one item at a time
//! and whose counts follow it: the documented shape, streamed, so memory
//! stays flat however many sessions a run handles.

use std::io::Write;

use serde::Serialize;

/// A JSON document being streamed: [`start`](Self::start), one
/// [`item`](Self::item) per session, then [`finish`](Self::finish).
pub(crate) struct SessionsDocument {
    first: bool,
}

impl SessionsDocument {
    /// Opens the document: `head` is the object's first members, to come
    /// before the array, as JSON text ending with a comma (or empty).
    pub(crate) fn start(out: &mut impl Write, head: &str) -> std::io::Result<Self> {
        write!(out, "{{{head}\"sessions\":[")?;
        Ok(Self { first: true })
    }

    /// Writes one element of the `sessions` array.
    pub(crate) fn item(
        &mut self,
        out: &mut impl Write,
        item: &impl Serialize,
    ) -> std::io::Result<()> {
        if !std::mem::replace(&mut self.first, false) {
            out.write_all(b",")?;
        }
        serde_json::to_writer(out, item)?;
        Ok(())
    }

    /// Closes the array and the document with `tail`'s members (an object).
    pub(crate) fn finish(self, out: &mut impl Write, tail: &impl Serialize) -> std::io::Result<()> {
        let tail = serde_json::to_string(tail)?;
        match tail.trim_start_matches('{') {
            "}" => writeln!(out, "]}}"),
            members => writeln!(out, "],{members}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_whole_json_with_the_sessions_first() {
        let mut out = Vec::new();
        let mut doc = SessionsDocument::start(&mut out, "\"dry_run\":false,").unwrap();
        doc.item(&mut out, &serde_json::json!({"id": 1})).unwrap();
        doc.item(&mut out, &serde_json::json!({"id": 2})).unwrap();
        doc.finish(&mut out, &serde_json::json!({"probed": 2}))
            .unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"dry_run": false, "sessions": [{"id": 1}, {"id": 2}], "probed": 2})
        );
        let mut empty = Vec::new();
        SessionsDocument::start(&mut empty, "")
            .unwrap()
            .finish(&mut empty, &serde_json::json!({"probed": 0}))
            .unwrap();
        assert_eq!(
            String::from_utf8(empty).unwrap(),
            "{\"sessions\":[],\"probed\":0}\n"
        );
        // Counts first and nothing after (status): still whole.
        let mut counts = Vec::new();
        let mut doc = SessionsDocument::start(&mut counts, "\"total\":1,").unwrap();
        doc.item(&mut counts, &serde_json::json!({"id": 1}))
            .unwrap();
        doc.finish(&mut counts, &serde_json::json!({})).unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&counts).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"total": 1, "sessions": [{"id": 1}]})
        );
    }
}
