//! The look of the edge's own pages (errors, offline device, sign-in): the web UI's palette,
//! type, card and buttons (crates/burrow/src/web/assets/app.css, kept in step by hand), inlined
//! so that a page served on a tunnel's host loads nothing from another origin.

/// The burrow mark (the web UI's `icon.svg`).
const MARK: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\" width=\"28\" \
    height=\"28\" aria-hidden=\"true\"><rect width=\"32\" height=\"32\" rx=\"7\" fill=\"#1f5f8b\"/>\
    <path d=\"M6 24c0-6 4.5-11 10-11s10 5 10 11\" fill=\"none\" stroke=\"#fff\" stroke-width=\"3\" \
    stroke-linecap=\"round\"/><circle cx=\"16\" cy=\"24\" r=\"3\" fill=\"#f2b134\"/></svg>";

const STYLE: &str = ":root{--fg:#1b2430;--muted:#5a6675;--bg:#f5f7fa;--card:#fff;--line:#d9dee5;\
    --accent:#1f5f8b;--err:#b42318;--err-bg:#fdecea;--radius:8px;--focus:0 0 0 3px #f2b13499;\
    font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;font-size:15px;\
    line-height:1.45;color:var(--fg);background:var(--bg)}\
    *{box-sizing:border-box}body{margin:0}\
    main{max-width:30rem;margin:10vh auto 0;padding:0 1rem}\
    .card{background:var(--card);border:1px solid var(--line);border-radius:var(--radius);\
    padding:1rem 1.25rem}\
    h1{display:flex;align-items:center;gap:.5rem;font-size:1.5rem;margin:0 0 1rem}\
    .sub{color:var(--muted);margin:.75rem 0 0;font-size:.85rem}\
    code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}\
    label{font-weight:600;display:block;margin-bottom:.9rem}\
    input{font:inherit;display:block;width:100%;margin-top:.25rem;padding:.45rem .6rem;\
    border:1px solid var(--line);border-radius:var(--radius);background:#fff;color:var(--fg)}\
    button{font:inherit;border:1px solid var(--accent);background:var(--accent);color:#fff;\
    padding:.45rem .9rem;border-radius:var(--radius);cursor:pointer}\
    :focus-visible{outline:none;box-shadow:var(--focus)}\
    .error{background:var(--err-bg);color:var(--err);border-radius:var(--radius);\
    padding:.5rem .75rem}";

/// A whole page: `title` (escaped here) as the heading beside the mark, `body` (HTML the
/// caller has escaped) in a card.
pub fn page(title: &str, body: &str) -> String {
    let title = crate::pages::escape(title);
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · burrow</title><style>{STYLE}</style></head>\n\
         <body><main><h1>{MARK}{title}</h1><div class=\"card\">{body}</div></main></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_carry_the_ui_look_and_escape_the_title() {
        let html = page("<b>", "<p>x</p>");
        assert!(html.contains("--accent:#1f5f8b"), "{html}");
        assert!(html.contains("<svg"), "{html}");
        assert!(
            html.contains("<h1>") && html.contains("&lt;b&gt;"),
            "{html}"
        );
        assert!(
            html.contains("<div class=\"card\"><p>x</p></div>"),
            "{html}"
        );
    }
}
