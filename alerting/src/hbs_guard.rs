//! Limits for handlebars templates, which the `handlebars` crate does not
//! enforce itself: it stops a template from including itself directly, but
//! an inline partial that includes itself (`{{#*inline "a"}}{{> a}}{{/inline}}{{> a}}`),
//! two partials including each other, or blocks nested ten thousand deep
//! recurse until the stack overflows and the process aborts.
//!
//! - [`check_source`] bounds block and subexpression nesting in the text,
//!   before the crate's parser (which recurses on it) sees it;
//! - [`check_partials`] walks the compiled templates: partial references
//!   must form no cycle, must be named statically, and the deepest chain of
//!   blocks through partials must stay within [`MAX_RENDER_DEPTH`];
//! - [`register_counted_helpers`] replaces `each` with one that charges
//!   every call and every item it iterates over to the render's budget
//!   ([`crate::render_guard`]).

use std::collections::BTreeMap;

use handlebars::template::{Parameter, Template, TemplateElement};
use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, JsonValue, Output, RenderContext, RenderError,
    RenderErrorReason, Renderable,
};

/// Deepest nesting of blocks (`{{#each}}`, `{{#if}}`, partial blocks, inline
/// partial definitions) or of subexpressions in one template's text.
pub const MAX_NESTING: usize = 100;
/// Deepest chain of nested blocks through partials at render time.
pub const MAX_RENDER_DEPTH: usize = 200;

/// The partial a template may use to render its caller's block.
const PARTIAL_BLOCK: &str = "@partial-block";

/// Refuses template text whose blocks or subexpressions nest deeper than
/// [`MAX_NESTING`]; looks at the text only, so it cannot recurse.
pub fn check_source(src: &str) -> Result<(), String> {
    let b = src.as_bytes();
    // One entry per open block: the `{{else if ...}}` links chained to it,
    // each of which nests one level deeper when compiled.
    let mut open: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(at) = find(b, i, b"{{") {
        let mut j = at + 2;
        // Raw and triple-stash mustaches open with more braces.
        while b.get(j) == Some(&b'{') {
            j += 1;
        }
        if b.get(j) == Some(&b'~') {
            j += 1;
        }
        match b.get(j) {
            Some(b'!') => {
                // Comments: `{{!-- ... --}}` may contain `}}`; `{{! ... }}` may not.
                let end: &[u8] = if b[j..].starts_with(b"!--") {
                    b"--}}"
                } else {
                    b"}}"
                };
                i = find(b, j, end).map_or(b.len(), |e| e + end.len());
                continue;
            }
            Some(b'#') => {
                open.push(0);
                depth += 1;
            }
            Some(b'^') if !is_else(b, j + 1) => {
                open.push(0);
                depth += 1;
            }
            Some(b'/') => {
                if let Some(links) = open.pop() {
                    depth -= 1 + links;
                }
            }
            _ if is_chained_else(b, j) => {
                if let Some(links) = open.last_mut() {
                    *links += 1;
                    depth += 1;
                }
            }
            _ => {}
        }
        if depth > MAX_NESTING {
            return Err(format!(
                "blocks nest deeper than the limit of {MAX_NESTING} levels (each `else if` counts as one)"
            ));
        }
        i = subexpressions_end(b, j)?;
    }
    Ok(())
}

/// `{{else if x}}`: an `else` with a helper after it.
fn is_chained_else(b: &[u8], from: usize) -> bool {
    let rest = &b[from..];
    let start = rest
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(rest.len());
    let rest = &rest[start..];
    rest.starts_with(b"else")
        && rest.get(4).is_some_and(u8::is_ascii_whitespace)
        && rest[4..]
            .iter()
            .find(|c| !c.is_ascii_whitespace())
            .is_some_and(|c| *c != b'}' && *c != b'~')
}

/// `{{^}}` and `{{~^~}}` are `else`, not an inverse block.
fn is_else(b: &[u8], from: usize) -> bool {
    b[from..]
        .iter()
        .find(|c| !c.is_ascii_whitespace() && **c != b'~')
        .is_none_or(|c| *c == b'}')
}

/// Scans one mustache from `from` to its closing braces, bounding the
/// nesting of parentheses outside string literals; returns where it ends.
fn subexpressions_end(b: &[u8], from: usize) -> Result<usize, String> {
    let mut depth = 0usize;
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'}' if b.get(i + 1) == Some(&b'}') => return Ok(i + 2),
            b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "subexpressions nest deeper than the limit of {MAX_NESTING} levels"
                    ));
                }
            }
            b')' => depth = depth.saturating_sub(1),
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += usize::from(b[i] == b'\\') + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(b.len())
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// What one template body (a registered template or an inline partial)
/// holds: the partials it includes, each at the block depth it does so,
/// and its own deepest block.
#[derive(Default)]
struct Body {
    includes: Vec<(String, usize)>,
    deepest: usize,
}

/// Everything that can be included by name, and every body.
#[derive(Default)]
struct Partials {
    /// Name -> its bodies (a registered template, and inline definitions).
    by_name: BTreeMap<String, Vec<Body>>,
}

/// Checks `templates` (every template a render may include, and the one to
/// render, by name) for partial cycles, partials named at render time, and
/// render depth past [`MAX_RENDER_DEPTH`].
pub fn check_partials<'a>(
    templates: impl IntoIterator<Item = (&'a str, &'a Template)>,
) -> Result<(), String> {
    let mut partials = Partials::default();
    for (name, t) in templates {
        let mut body = Body::default();
        walk(t, 0, &mut body, &mut partials)?;
        partials.by_name.entry(name.to_string()).or_default().push(body);
    }
    let mut depth = BTreeMap::new();
    let names: Vec<String> = partials.by_name.keys().cloned().collect();
    for name in names {
        let mut path = Vec::new();
        depth_of(&name, &partials, &mut depth, &mut path)?;
    }
    Ok(())
}

/// The deepest render of partial `name`, memoised in `done`; `path` holds
/// the partials being expanded, to name a cycle.
fn depth_of(
    name: &str,
    partials: &Partials,
    done: &mut BTreeMap<String, usize>,
    path: &mut Vec<String>,
) -> Result<usize, String> {
    if let Some(d) = done.get(name) {
        return Ok(*d);
    }
    if path.iter().any(|p| p == name) {
        path.push(name.to_string());
        return Err(format!("partials include themselves: {}", path.join(" -> ")));
    }
    let Some(bodies) = partials.by_name.get(name) else {
        // Not defined anywhere: rendering it fails with "partial not found".
        return Ok(0);
    };
    path.push(name.to_string());
    let mut deepest = 0;
    for body in bodies {
        deepest = deepest.max(body.deepest);
        for (inc, at) in &body.includes {
            deepest = deepest.max(at + 1 + depth_of(inc, partials, done, path)?);
        }
    }
    path.pop();
    if deepest > MAX_RENDER_DEPTH {
        return Err(format!(
            "partial {name:?} renders blocks nested deeper than the limit of {MAX_RENDER_DEPTH} levels"
        ));
    }
    done.insert(name.to_string(), deepest);
    Ok(deepest)
}

/// A partial's name when it is given in the text; `None` for a name
/// computed at render time.
fn static_name(p: &Parameter) -> Option<String> {
    match p {
        Parameter::Name(n) => Some(n.clone()),
        Parameter::Path(_) => p.as_name().map(str::to_string),
        Parameter::Literal(JsonValue::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Records what `t`'s elements include into `body`; inline definitions
/// become bodies of their own in `partials`. Recursion here is bounded by
/// [`check_source`], which ran on the text first.
fn walk(t: &Template, level: usize, body: &mut Body, partials: &mut Partials) -> Result<(), String> {
    body.deepest = body.deepest.max(level);
    for e in &t.elements {
        match e {
            TemplateElement::HelperBlock(h) => {
                for inner in [&h.template, &h.inverse].into_iter().flatten() {
                    walk(inner, level + 1, body, partials)?;
                }
            }
            TemplateElement::DecoratorBlock(d) | TemplateElement::DecoratorExpression(d) => {
                if d.name.as_name() != Some("inline") {
                    continue;
                }
                let name = d
                    .params
                    .first()
                    .and_then(static_name)
                    .ok_or("inline partials need a literal name")?;
                let mut def = Body::default();
                if let Some(inner) = &d.template {
                    walk(inner, 0, &mut def, partials)?;
                }
                partials.by_name.entry(name).or_default().push(def);
            }
            TemplateElement::PartialExpression(d) | TemplateElement::PartialBlock(d) => {
                let name = static_name(&d.name).ok_or(
                    "partials must be named in the template text (dynamic partial names are not supported)",
                )?;
                if name != PARTIAL_BLOCK {
                    body.includes.push((name, level));
                }
                // A partial block's content renders in the caller, as the
                // partial's `@partial-block` or as its fallback.
                if let Some(inner) = &d.template {
                    walk(inner, level + 1, body, partials)?;
                }
            }
            // Text, expressions and comments include nothing.
            _ => {}
        }
    }
    Ok(())
}

/// `each`, charging the render budget one step per call and per item. It
/// replaces the built-in one (whose loop cannot be reached from outside)
/// with the same semantics: arrays and objects are iterated with `@index`,
/// `@first`, `@last` (and `@key` for objects) and block parameters
/// (`as |item index|`); an empty or missing collection renders the `else`
/// block. It is the only helper that multiplies work (nested `each` over
/// large data): every other block is bounded by the static nesting limit.
struct CountedEach;

impl HelperDef for CountedEach {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let charge = |n: usize| {
            crate::render_guard::charge(n as u64).map_err(|e| RenderError::from(RenderErrorReason::Other(e)))
        };
        charge(1)?;
        let param = h
            .param(0)
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("each", 0))?;
        let Some(body) = h.template() else {
            return Ok(());
        };
        // (key as JSON, item) pairs; `None` when the value is not a collection.
        let items: Option<Vec<(JsonValue, bool, &JsonValue)>> = match param.value() {
            JsonValue::Array(list) => Some(
                list.iter()
                    .enumerate()
                    .map(|(i, v)| (JsonValue::from(i), false, v))
                    .collect(),
            ),
            JsonValue::Object(map) => Some(
                map.iter()
                    .map(|(k, v)| (JsonValue::String(k.clone()), true, v))
                    .collect(),
            ),
            _ => None,
        };
        let items = match items {
            Some(items) if !items.is_empty() || h.inverse().is_none() => items,
            _ => {
                return match h.inverse() {
                    Some(inverse) => inverse.render(r, ctx, rc, out),
                    None if r.strict_mode() => Err(RenderError::strict_error(param.relative_path())),
                    None => Ok(()),
                };
            }
        };
        let base_path = param.context_path().cloned();
        let mut block = handlebars::BlockContext::new();
        match &base_path {
            Some(path) => block.base_path_mut().clone_from(path),
            None => block.set_base_value(param.value().clone()),
        }
        rc.push_block(block);
        let last = items.len().saturating_sub(1);
        let mut result = Ok(());
        for (i, (key, is_object, item)) in items.into_iter().enumerate() {
            if let Err(e) = charge(1) {
                result = Err(e);
                break;
            }
            if let Some(block) = rc.block_mut() {
                block.set_local_var("first", JsonValue::Bool(i == 0));
                block.set_local_var("last", JsonValue::Bool(i == last));
                block.set_local_var("index", JsonValue::from(i));
                if is_object {
                    block.set_local_var("key", key.clone());
                }
                let segment = match &key {
                    JsonValue::String(k) => k.clone(),
                    other => other.to_string(),
                };
                match &base_path {
                    Some(path) => {
                        let mut p = path.clone();
                        p.push(segment);
                        *block.base_path_mut() = p;
                    }
                    None => block.set_base_value(item.clone()),
                }
                let mut params = handlebars::BlockParams::new();
                let bound = if let Some((value_name, key_name)) = h.block_param_pair() {
                    bind(&mut params, value_name, base_path.is_some(), item)
                        .and_then(|()| params.add_value(key_name, key.clone()))
                        .map(|()| true)
                } else if let Some(value_name) = h.block_param() {
                    bind(&mut params, value_name, base_path.is_some(), item).map(|()| true)
                } else {
                    Ok(false)
                };
                match bound {
                    Ok(true) => block.set_block_params(params),
                    Ok(false) => {}
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            if let Err(e) = body.render(r, ctx, rc, out) {
                result = Err(e);
                break;
            }
        }
        rc.pop_block();
        result
    }
}

/// Binds a block parameter to the current item: as a path relative to the
/// block when the collection lives in the context, else as a value.
fn bind<'rc>(
    params: &mut handlebars::BlockParams<'rc>,
    name: &'rc str,
    in_context: bool,
    item: &JsonValue,
) -> Result<(), RenderError> {
    if in_context {
        params.add_path(name, Vec::new())
    } else {
        params.add_value(name, item.clone())
    }
}

/// Replaces the built-in `each` of `h` with the counted one.
pub fn register_counted_helpers(h: &mut Handlebars<'_>) {
    h.register_helper("each", Box::new(CountedEach));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(src: &str) -> Template {
        check_source(src).unwrap();
        Template::compile(src).unwrap()
    }

    #[test]
    fn nesting_in_the_text_is_bounded() {
        let deep_blocks = format!("{}x{}", "{{#if a}}".repeat(10_000), "{{/if}}".repeat(10_000));
        assert!(check_source(&deep_blocks).unwrap_err().contains("limit of 100"));
        let deep_subexpr = format!("{{{{upper {}x{}}}}}", "(upper ".repeat(5_000), ")".repeat(5_000));
        assert!(
            check_source(&deep_subexpr)
                .unwrap_err()
                .contains("subexpressions")
        );
        // Siblings, else branches, comments and strings do not nest.
        let chain = format!("{{{{#if a}}}}{}{{{{/if}}}}", "{{else if b}}x".repeat(5_000));
        assert!(check_source(&chain).unwrap_err().contains("else if"));
        let wide = "{{#if a}}x{{else}}y{{else if c}}z{{/if}}".repeat(5_000);
        check_source(&wide).unwrap();
        check_source(&"{{#if a}}x{{^}}y{{/if}}".repeat(500)).unwrap();
        check_source(&format!("{{{{!-- {} --}}}}", "{{#if a}}".repeat(500))).unwrap();
        check_source(&format!("{{{{upper \"{}\"}}}}", "(".repeat(500))).unwrap();
        check_source(&format!("{}x{}", "{{#if a}}".repeat(100), "{{/if}}".repeat(100))).unwrap();
    }

    #[test]
    fn partial_cycles_are_refused() {
        let selfish = compiled("{{#*inline \"a\"}}x{{> a}}{{/inline}}{{> a}}");
        let e = check_partials([("preview", &selfish)]).unwrap_err();
        assert_eq!(e, "partials include themselves: a -> a");
        let a = compiled("{{> b}}");
        let b = compiled("{{#if x}}{{> a}}{{/if}}");
        let e = check_partials([("a", &a), ("b", &b)]).unwrap_err();
        assert!(e.contains("a -> b -> a"), "{e}");
        let block = compiled("{{#> layout}}{{> layout}}{{/layout}}");
        let layout = compiled("<{{> @partial-block}}>");
        assert!(check_partials([("page", &block), ("layout", &layout)]).is_ok());
        let recursive_block = compiled("{{#> page}}x{{/page}}");
        assert!(check_partials([("page", &recursive_block)]).is_err());
    }

    #[test]
    fn deep_partial_chains_are_refused() {
        // 300 partials, each including the next inside a block.
        let chain: Vec<(String, Template)> = (0..300)
            .map(|i| {
                (
                    format!("p{i}"),
                    compiled(&format!("{{{{#if x}}}}{{{{> p{}}}}}{{{{/if}}}}", i + 1)),
                )
            })
            .collect();
        let e = check_partials(chain.iter().map(|(n, t)| (n.as_str(), t))).unwrap_err();
        assert!(e.contains("limit of 200"), "{e}");
        let short = &chain[250..];
        assert!(check_partials(short.iter().map(|(n, t)| (n.as_str(), t))).is_ok());
    }
}
