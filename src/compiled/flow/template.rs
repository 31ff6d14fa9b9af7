//! Templates: strings with `{{ expression }}` parts, parsed once when a scenario loads and
//! rendered per request without re-parsing.
//!
//! Expressions are small on purpose: literals (`"text"`, `42`), names (`token`, `seq`, `nul`),
//! dotted paths (`user.phone`, `env.CHAT_SECRET`, `swarm.online.user_id`), calls (`uuid()`,
//! `random_int(1, 6)`, `base64(nul + user.phone)`, `swarm.sample(20).phone`) and `+`, which
//! concatenates strings (or lists). What a name means is decided by the [`Resolver`] the flow
//! compiler supplies, so an unknown variable is an error at load time, with its position.

use std::fmt;

/// A value produced by an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    List(Vec<Value>),
}

impl Value {
    /// The text of a value as inserted into a string.
    pub fn write_to(&self, out: &mut String) {
        match self {
            Value::Null => {}
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Num(n) => {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    out.push_str(&format!("{}", *n as i64));
                } else {
                    out.push_str(&format!("{n}"));
                }
            }
            Value::Str(s) => out.push_str(s),
            Value::List(items) => {
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_to(out);
                }
            }
        }
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        self.write_to(&mut s);
        s
    }

    /// The value as JSON, for structured bodies: lists stay arrays, numbers stay numbers.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            // Whole numbers stay integers in JSON: a captured status 200 is `200`, not `200.0`.
            Value::Num(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
                serde_json::Value::from(*n as i64)
            }
            Value::Num(n) => serde_json::Number::from_f64(*n)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
        }
    }

    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Num(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            // An object captured as a whole is kept as its JSON text.
            o @ serde_json::Value::Object(_) => Value::Str(o.to_string()),
        }
    }
}

/// A syntax or name error at a character offset inside the template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

fn error(offset: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        offset,
        message: message.into(),
    }
}

/// A parsed reference before resolution: `swarm.sample(20).phone` is three segments, the second
/// with arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub name: String,
    pub args: Option<Vec<Syntax>>,
}

/// Expression syntax as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Syntax {
    Lit(Value),
    Path {
        offset: usize,
        segments: Vec<Segment>,
    },
    Concat(Vec<Syntax>),
}

/// Turns a path into an executable expression of type `E`, or says why it is unknown. The flow
/// compiler implements it: it knows the variables captured so far, the generators and the swarm.
pub trait Resolver {
    type Expr;
    fn literal(&mut self, value: Value) -> Self::Expr;
    fn concat(&mut self, parts: Vec<Self::Expr>) -> Self::Expr;
    fn path(
        &mut self,
        segments: &[Segment],
        args: Vec<Vec<Self::Expr>>,
    ) -> Result<Self::Expr, String>;
}

/// How inserted values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    None,
    /// Percent-encode everything but unreserved characters (RFC 3986), for path and query parts.
    Url,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part<E> {
    Text(String),
    Expr(E),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template<E> {
    pub parts: Vec<Part<E>>,
    pub escape: Escape,
}

impl<E> Template<E> {
    /// The single expression when the whole template is one `{{ ... }}` (a JSON body field then
    /// takes the expression's own type: a list stays an array).
    pub fn sole_expr(&self) -> Option<&E> {
        match self.parts.as_slice() {
            [Part::Expr(e)] => Some(e),
            _ => None,
        }
    }

    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// Renders with `eval` for each expression.
    pub fn render_with<F: FnMut(&E) -> Value>(&self, mut eval: F) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Expr(e) => {
                    let v = eval(e);
                    match self.escape {
                        Escape::None => v.write_to(&mut out),
                        Escape::Url => percent_encode(&v.to_text(), &mut out),
                    }
                }
            }
        }
        out
    }
}

pub fn percent_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Parses `text` into literal text and `{{ }}` expressions, resolving each with `resolver`.
pub fn compile<R: Resolver>(
    text: &str,
    escape: Escape,
    resolver: &mut R,
) -> Result<Template<R::Expr>, TemplateError> {
    let mut parts = Vec::new();
    let mut rest = text;
    let mut base = 0;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(Part::Text(rest[..open].to_string()));
        }
        let inner_start = base + open + 2;
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| error(base + open, "`{{` is not closed by `}}`"))?;
        let syntax = parse_expr(&after[..close], inner_start)?;
        parts.push(Part::Expr(resolve(&syntax, resolver)?));
        let consumed = open + 2 + close + 2;
        base += consumed;
        rest = &rest[consumed..];
    }
    // A `}}` with no `{{` before it is text (JSON in a raw body ends with one: `{"a":{"b":1}}`).
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    Ok(Template { parts, escape })
}

/// Resolves parsed syntax into the resolver's expressions.
pub fn resolve<R: Resolver>(s: &Syntax, r: &mut R) -> Result<R::Expr, TemplateError> {
    Ok(match s {
        Syntax::Lit(v) => r.literal(v.clone()),
        Syntax::Concat(items) => {
            let parts = items
                .iter()
                .map(|i| resolve(i, r))
                .collect::<Result<Vec<_>, _>>()?;
            r.concat(parts)
        }
        Syntax::Path { offset, segments } => {
            let mut args = Vec::with_capacity(segments.len());
            for seg in segments {
                let a = match &seg.args {
                    Some(list) => list
                        .iter()
                        .map(|x| resolve(x, r))
                        .collect::<Result<Vec<_>, _>>()?,
                    None => Vec::new(),
                };
                args.push(a);
            }
            r.path(segments, args).map_err(|m| error(*offset, m))?
        }
    })
}

/// Parses one expression; `base` is its offset in the whole template, for error positions.
pub fn parse_expr(src: &str, base: usize) -> Result<Syntax, TemplateError> {
    let mut p = Parser {
        src,
        pos: 0,
        base,
        depth: 0,
    };
    p.skip_ws();
    if p.pos == src.len() {
        return Err(error(
            base,
            "empty `{{ }}`: write an expression, e.g. `{{ token }}`",
        ));
    }
    let e = p.concat()?;
    p.skip_ws();
    if p.pos < src.len() {
        return Err(error(
            base + p.pos,
            format!("unexpected `{}`", &src[p.pos..]),
        ));
    }
    Ok(e)
}

/// How deep calls may nest in an expression: `f(g(h(x)))` is 3. Parsing, compiling, evaluating
/// and dropping an expression each recurse once per level, and a scenario nesting 10 000 calls
/// overflowed the stack; real templates nest a few.
pub const MAX_NESTING: usize = 32;

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    base: usize,
    /// Calls open around the current position.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    /// Moves past one character, however many bytes it takes (a name or a space need not be
    /// ASCII, and `pos` must stay on a character boundary).
    fn bump(&mut self, c: char) {
        self.pos += c.len_utf8();
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.bump(c);
        }
    }

    fn at(&self) -> usize {
        self.base + self.pos
    }

    fn concat(&mut self) -> Result<Syntax, TemplateError> {
        let mut items = vec![self.term()?];
        loop {
            self.skip_ws();
            if self.peek() == Some('+') {
                self.pos += 1;
                items.push(self.term()?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Syntax::Concat(items)
        })
    }

    fn term(&mut self) -> Result<Syntax, TemplateError> {
        self.skip_ws();
        match self.peek() {
            Some('"') | Some('\'') => self.string(),
            Some(c) if c.is_ascii_digit() || c == '-' => self.number(),
            Some(c) if c.is_alphabetic() || c == '_' => self.path(),
            Some(c) => Err(error(self.at(), format!("unexpected `{c}`"))),
            None => Err(error(self.at(), "expected a value after `+`")),
        }
    }

    fn string(&mut self) -> Result<Syntax, TemplateError> {
        let start = self.at();
        let quote = self.peek().unwrap_or('"');
        self.pos += 1;
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.pos += c.len_utf8();
            match c {
                c if c == quote => return Ok(Syntax::Lit(Value::Str(out))),
                '\\' => {
                    let e = self
                        .peek()
                        .ok_or_else(|| error(start, "unterminated string"))?;
                    self.pos += e.len_utf8();
                    out.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        '0' => '\0',
                        other => other,
                    });
                }
                c => out.push(c),
            }
        }
        Err(error(start, "unterminated string"))
    }

    fn number(&mut self) -> Result<Syntax, TemplateError> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '.') {
            self.pos += 1;
        }
        let text = &self.src[start..self.pos];
        text.parse::<f64>()
            .map(|n| Syntax::Lit(Value::Num(n)))
            .map_err(|_| error(self.base + start, format!("`{text}` is not a number")))
    }

    fn ident(&mut self) -> Result<String, TemplateError> {
        let start = self.pos;
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            self.bump(c);
        }
        if start == self.pos {
            return Err(error(self.at(), "expected a name"));
        }
        Ok(self.src[start..self.pos].to_string())
    }

    fn path(&mut self) -> Result<Syntax, TemplateError> {
        let offset = self.at();
        let mut segments = Vec::new();
        loop {
            let name = self.ident()?;
            let args = if self.peek() == Some('(') {
                if self.depth == MAX_NESTING {
                    return Err(error(
                        self.at(),
                        format!("calls nested more than {MAX_NESTING} deep"),
                    ));
                }
                self.pos += 1;
                self.depth += 1;
                let mut args = Vec::new();
                self.skip_ws();
                if self.peek() == Some(')') {
                    self.pos += 1;
                } else {
                    loop {
                        args.push(self.concat()?);
                        self.skip_ws();
                        match self.peek() {
                            Some(',') => self.pos += 1,
                            Some(')') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(error(self.at(), "expected `,` or `)`")),
                        }
                    }
                }
                self.depth -= 1;
                Some(args)
            } else {
                None
            };
            segments.push(Segment { name, args });
            if self.peek() == Some('.') {
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(Syntax::Path { offset, segments })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resolves names from a fixed table; calls to `upper(x)` upper-case.
    struct Table;

    #[derive(Debug, Clone, PartialEq)]
    enum E {
        Lit(Value),
        Var(&'static str),
        Upper(Box<E>),
        Concat(Vec<E>),
    }

    impl Resolver for Table {
        type Expr = E;
        fn literal(&mut self, v: Value) -> E {
            E::Lit(v)
        }
        fn concat(&mut self, parts: Vec<E>) -> E {
            E::Concat(parts)
        }
        fn path(&mut self, segs: &[Segment], mut args: Vec<Vec<E>>) -> Result<E, String> {
            let names: Vec<&str> = segs.iter().map(|s| s.name.as_str()).collect();
            match names.as_slice() {
                ["token"] => Ok(E::Var("tok")),
                ["user", "phone"] => Ok(E::Var("+15550001")),
                ["upper"] if args[0].len() == 1 => Ok(E::Upper(Box::new(args[0].remove(0)))),
                _ => Err(format!("unknown variable `{}`", names.join("."))),
            }
        }
    }

    fn eval(e: &E) -> Value {
        match e {
            E::Lit(v) => v.clone(),
            E::Var(s) => Value::Str(s.to_string()),
            E::Upper(x) => Value::Str(eval(x).to_text().to_uppercase()),
            E::Concat(parts) => Value::Str(parts.iter().map(|p| eval(p).to_text()).collect()),
        }
    }

    #[test]
    fn renders_text_and_expressions() {
        let t = compile("Bearer {{ token }}!", Escape::None, &mut Table).expect("ok");
        assert_eq!(t.render_with(eval), "Bearer tok!");
        let t = compile("{{upper(\"a\" + token)}}-{{ 7 }}", Escape::None, &mut Table).expect("ok");
        assert_eq!(t.render_with(eval), "ATOK-7");
        assert!(compile("plain", Escape::None, &mut Table)
            .expect("ok")
            .is_constant());
    }

    #[test]
    fn url_parts_are_percent_encoded() {
        let t = compile("/v1/test/sms/{{ user.phone }}", Escape::Url, &mut Table).expect("ok");
        assert_eq!(t.render_with(eval), "/v1/test/sms/%2B15550001");
    }

    #[test]
    fn errors_carry_their_offset() {
        let e = compile("a {{ tokn }}", Escape::None, &mut Table).expect_err("unknown");
        assert_eq!(e.offset, 5);
        assert!(e.message.contains("tokn"));
        let e = compile("a {{ token ", Escape::None, &mut Table).expect_err("unclosed");
        assert_eq!(e.offset, 2);
        let e = compile("{{ token + }}", Escape::None, &mut Table).expect_err("dangling");
        assert!(e.message.contains("after `+`"), "{e}");
        // A `}}` alone is text: JSON in a raw body ends with one.
        let t = compile(r#"{"a":{"b":{{ token }}}}"#, Escape::None, &mut Table).expect("text");
        assert_eq!(t.parts.last(), Some(&Part::Text("}}".to_string())));
        assert_eq!(
            compile("x }}", Escape::None, &mut Table)
                .expect("text")
                .parts,
            [Part::Text("x }}".to_string())]
        );
        let e = compile("{{ \"open }}", Escape::None, &mut Table).expect_err("string");
        assert!(e.message.contains("unterminated"));
    }

    #[test]
    fn calls_nest_up_to_a_bound_and_deeper_is_an_error_not_a_stack_overflow() {
        let nested = |n: usize| format!("{{{{ {}token{} }}}}", "upper(".repeat(n), ")".repeat(n));
        let ok = compile(&nested(MAX_NESTING), Escape::None, &mut Table).expect("within");
        assert_eq!(ok.parts.len(), 1);
        let e = compile(&nested(MAX_NESTING + 1), Escape::None, &mut Table).expect_err("deep");
        assert!(e.message.contains("nested"), "{e}");
        // Where the call too many opens: after the first 32 `upper(`.
        assert_eq!(e.offset, 3 + MAX_NESTING * "upper(".len() + "upper".len());
        // 10 000 deep overflowed the stack before the bound.
        assert!(compile(&nested(10_000), Escape::None, &mut Table).is_err());
    }

    #[test]
    fn non_ascii_inside_braces_is_an_error_with_its_offset_not_a_panic() {
        // Names may be any letters: `éx` is an unknown variable at byte 7, where it starts.
        let e = compile("/v1/{{ éx }}", Escape::None, &mut Table).expect_err("unknown");
        assert_eq!(e.offset, 7);
        assert!(e.message.contains("éx"), "{e}");
        // A non-breaking space is white space; the name after it still resolves.
        let t = compile("{{\u{a0}token\u{3000}}}", Escape::None, &mut Table).expect("ok");
        assert_eq!(t.render_with(eval), "tok");
        // A character that starts no value, and one after a value.
        for text in [
            "{{ ✓ }}",
            "{{ token ✓ }}",
            "{{ token.é }}",
            "{{ upper(é) }}",
            "{{ 1é }}",
        ] {
            let e = compile(text, Escape::None, &mut Table).expect_err(text);
            assert!(
                e.offset <= text.len() && text.is_char_boundary(e.offset),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn values_render_and_convert() {
        assert_eq!(Value::Num(3.0).to_text(), "3");
        assert_eq!(Value::Num(2.5).to_text(), "2.5");
        let l = Value::List(vec![Value::Str("a".into()), Value::Num(1.0)]);
        assert_eq!(l.to_text(), "a,1");
        assert_eq!(l.to_json().to_string(), r#"["a",1]"#);
        assert_eq!(Value::Num(2.5).to_json().to_string(), "2.5");
        assert_eq!(Value::from_json(&serde_json::json!(["a", 1.0])), l);
    }
}
