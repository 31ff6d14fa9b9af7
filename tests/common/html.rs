//! Reading a generated page back (index.html, compare.html) with the `tl` parser.

/// Undoes the escaping the page applies to text.
pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Every element of a parsed page.
pub fn tags<'a, 'b>(dom: &'b tl::VDom<'a>) -> impl Iterator<Item = &'b tl::HTMLTag<'a>> {
    dom.nodes().iter().filter_map(tl::Node::as_tag)
}

pub fn name_of(tag: &tl::HTMLTag) -> String {
    tag.name().as_utf8_str().to_ascii_lowercase()
}

pub fn attr(tag: &tl::HTMLTag, key: &str) -> Option<String> {
    tag.attributes()
        .get(key)
        .flatten()
        .map(|v| v.as_utf8_str().into_owned())
}

pub fn text(tag: &tl::HTMLTag, dom: &tl::VDom) -> String {
    unescape(tag.inner_text(dom.parser()).trim())
}

/// The elements of `tag` one level down.
pub fn children<'a, 'b>(
    tag: &'b tl::HTMLTag<'a>,
    dom: &'b tl::VDom<'a>,
) -> Vec<&'b tl::HTMLTag<'a>> {
    tag.children()
        .top()
        .iter()
        .filter_map(|h| h.get(dom.parser()).and_then(tl::Node::as_tag))
        .collect()
}

/// The inner HTML of the element with `id`.
pub fn section(dom: &tl::VDom, id: &str) -> String {
    let node = dom
        .get_element_by_id(id)
        .unwrap_or_else(|| panic!("no element #{id}"));
    let tag = node.get(dom.parser()).and_then(tl::Node::as_tag).unwrap();
    tag.inner_html(dom.parser())
}

pub fn parse(html: &str) -> tl::VDom<'_> {
    tl::parse(html, tl::ParserOptions::default()).expect("the page parses as HTML")
}

/// The page fetches nothing: no scripts, stylesheets, images or fonts, nothing on the network.
/// Returns the links that leave the page (anything but `#fragment`), for the caller to judge.
pub fn outside_links(page: &str, dom: &tl::VDom) -> Vec<String> {
    for needle in ["http://", "https://", "url(", "@import", "//cdn"] {
        assert!(!page.contains(needle), "the page contains {needle:?}");
    }
    let mut links = Vec::new();
    for tag in tags(dom) {
        let name = name_of(tag);
        assert!(
            !matches!(
                name.as_str(),
                "script" | "link" | "iframe" | "img" | "object" | "embed"
            ),
            "the page has a <{name}> element"
        );
        for key in ["src", "xlink:href", "srcset", "action", "poster", "data"] {
            if let Some(v) = attr(tag, key) {
                assert!(
                    v.starts_with('#'),
                    "<{name} {key}=\"{v}\"> refers outside the page"
                );
            }
        }
        if let Some(v) = attr(tag, "href").filter(|v| !v.starts_with('#')) {
            assert_eq!(name, "a", "<{name} href=\"{v}\"> would be fetched");
            links.push(v);
        }
    }
    links
}

/// The page refers to nothing outside itself: not even a link.
pub fn assert_self_contained(page: &str, dom: &tl::VDom) {
    let links = outside_links(page, dom);
    assert!(links.is_empty(), "links outside the page: {links:?}");
}
