//! The live page at `/`: one HTML file, its script, style sheet and icon,
//! compiled into the binary so that the page works offline and nothing is
//! loaded from anywhere but this daemon.
//!
//! The script draws its charts as plain SVG rather than through a vendored
//! chart library: a sparkline and a two-series rate chart are a few dozen
//! lines of polyline code, and that leaves no third-party code to audit,
//! update or license in the binary, and keeps the page under 40 KiB.
//!
//! The Content-Security-Policy allows scripts, styles, images and
//! connections from this origin only, no inline script or style, and no
//! framing; the same TLS and basic auth as every other endpoint apply,
//! because the routing in `http` serves these like any other path.

/// A file of the page.
#[derive(Debug)]
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static str,
}

const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_str!("index.html"),
};

const ASSETS: [(&str, Asset); 4] = [
    ("/", INDEX),
    (
        "/ui/app.js",
        Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("app.js"),
        },
    ),
    (
        "/ui/app.css",
        Asset {
            content_type: "text/css; charset=utf-8",
            body: include_str!("app.css"),
        },
    ),
    (
        "/ui/favicon.svg",
        Asset {
            content_type: "image/svg+xml",
            body: include_str!("favicon.svg"),
        },
    ),
];

/// Same origin only, for everything; `img-src` covers the icon.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The file served at `path`, if the page has one.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|(p, _)| *p == path).map(|(_, a)| a)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file the page names is served, and the page names nothing
    /// outside this origin that the browser would fetch.
    #[test]
    fn the_page_loads_only_what_is_embedded() {
        let index = asset("/").unwrap().body;
        for (path, _) in &ASSETS[1..] {
            assert!(index.contains(&format!("\"{path}\"")), "{path} unused");
        }
        for attr in ["src=\"", "href=\""] {
            for (i, _) in index.match_indices(attr) {
                let target = &index[i + attr.len()..];
                let fetched = !index[..i].ends_with("<a ");
                assert!(
                    !fetched || target.starts_with('/'),
                    "loads from elsewhere: {}",
                    &target[..target.find('"').unwrap()]
                );
            }
        }
        assert!(!index.contains("<script>") && !index.contains(" style="));
    }
}
