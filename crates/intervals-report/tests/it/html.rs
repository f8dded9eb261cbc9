//! Just enough HTML reading for the tests: the rows of a table, as the reader sees their text.

/// The text of every `<tr>` of the first `<table class="{class}">`: one string per cell (`<th>` or `<td>`),
/// tags dropped, entities decoded, whitespace trimmed.
pub(crate) fn table_rows(html: &str, class: &str) -> Vec<Vec<String>> {
    let open = format!("<table class=\"{class}\">");
    let start = html.find(&open).unwrap_or_else(|| panic!("no {open} in the page"));
    let table = &html[start..];
    let table = &table[..table.find("</table>").expect("a closed table")];
    table
        .split("<tr")
        .skip(1)
        .map(|row| {
            let row = &row[..row.find("</tr>").expect("a closed row")];
            row.split("<t")
                .skip(1)
                .filter(|cell| cell.starts_with('d') || cell.starts_with('h'))
                .map(|cell| {
                    let body = &cell[cell.find('>').expect("a tag end") + 1..];
                    let body = body.rsplit_once("</t").map_or(body, |(b, _)| b);
                    decode(&strip_tags(body)).trim().to_owned()
                })
                .collect()
        })
        .collect()
}

/// The row (as cell texts) whose cells include `key`.
pub(crate) fn row_with<'a>(rows: &'a [Vec<String>], key: &str) -> &'a [String] {
    rows.iter().find(|r| r.iter().any(|c| c == key)).unwrap_or_else(|| panic!("no row with {key}"))
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

pub(crate) fn decode(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}
