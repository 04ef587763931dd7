//! `$filter` on /users and /groups, the subset directory objects support.
//!
//! Support per operator and property follows
//! https://learn.microsoft.com/graph/aad-advanced-queries: `eq`, `in`,
//! `startsWith` and lambda `any` work by default; `ne`, `not` and `endsWith`
//! (the latter only on mail, otherMails, userPrincipalName and
//! proxyAddresses) need `ConsistencyLevel: eventual` plus `$count=true`.

use super::errors::GraphResp;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Str(String),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum StrFn {
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Eq(&'static str, Lit),
    Ne(&'static str, Lit),
    In(&'static str, Vec<Lit>),
    Func(StrFn, &'static str, String),
    /// `prop/any(x: x eq 'v')` or `prop/any(x: startsWith(x, 'v'))`.
    Any(&'static str, Option<StrFn>, String),
}

/// Values a property offers to a filter.
pub(crate) enum FVal {
    Str(Option<String>),
    Bool(bool),
    List(Vec<String>),
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Str,
    Bool,
    List,
}

/// (canonical name, kind, startsWith by default, endsWith in advanced mode)
pub(crate) type Prop = (&'static str, Kind, bool, bool);

/// The filterable properties of one resource type.
pub(crate) struct Schema {
    /// As Graph names it in refusals ('User', 'Group').
    pub(crate) resource: &'static str,
    pub(crate) props: &'static [Prop],
}

/// Filterable user properties.
pub(crate) const USERS: Schema = Schema {
    resource: "User",
    props: &[
        ("id", Kind::Str, false, false),
        ("userPrincipalName", Kind::Str, true, true),
        ("mail", Kind::Str, true, true),
        ("mailNickname", Kind::Str, true, false),
        ("displayName", Kind::Str, true, false),
        ("givenName", Kind::Str, true, false),
        ("surname", Kind::Str, true, false),
        ("jobTitle", Kind::Str, true, false),
        ("department", Kind::Str, true, false),
        ("officeLocation", Kind::Str, true, false),
        ("usageLocation", Kind::Str, true, false),
        ("employeeId", Kind::Str, true, false),
        ("city", Kind::Str, true, false),
        ("country", Kind::Str, true, false),
        ("companyName", Kind::Str, true, false),
        ("state", Kind::Str, true, false),
        ("employeeType", Kind::Str, true, false),
        ("userType", Kind::Str, false, false),
        ("accountEnabled", Kind::Bool, false, false),
        ("otherMails", Kind::List, true, true),
        ("proxyAddresses", Kind::List, true, true),
    ],
};

/// Filterable group properties, per the property table of
/// https://learn.microsoft.com/graph/api/resources/group (`eq` on all,
/// `startsWith` on the names and mail, `endsWith` on mail and proxyAddresses
/// in advanced queries).
pub(crate) const GROUPS: Schema = Schema {
    resource: "Group",
    props: &[
        ("id", Kind::Str, false, false),
        ("displayName", Kind::Str, true, false),
        ("mailNickname", Kind::Str, true, false),
        ("mail", Kind::Str, true, true),
        ("description", Kind::Str, true, false),
        ("mailEnabled", Kind::Bool, false, false),
        ("securityEnabled", Kind::Bool, false, false),
        ("groupTypes", Kind::List, false, false),
        ("proxyAddresses", Kind::List, true, true),
    ],
};

impl Schema {
    fn prop(&self, name: &str) -> Option<Prop> {
        self.props
            .iter()
            .find(|(n, ..)| n.eq_ignore_ascii_case(name))
            .copied()
    }

    fn find(&self, name: &str) -> Result<Prop, GraphResp> {
        self.prop(name).ok_or_else(|| self.unsupported(name))
    }

    fn unsupported(&self, name: &str) -> GraphResp {
        GraphResp::error(
            400,
            "Request_UnsupportedQuery",
            format!(
                "Unsupported or invalid query filter clause specified for property '{name}' of resource '{}'.",
                self.resource
            ),
        )
    }
}

fn syntax(detail: &str, input: &str) -> GraphResp {
    GraphResp::error(
        400,
        "BadRequest",
        format!("Invalid filter clause: {detail} in '{input}'."),
    )
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    LParen,
    RParen,
    Comma,
    Colon,
}

fn lex(input: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            ':' => {
                out.push(Tok::Colon);
                i += 1
            }
            '\'' => {
                // OData string literal; a quote inside is written as ''.
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("Unterminated string literal at position {i}")),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
            }
            c if c.is_alphanumeric() || c == '_' || c == '/' || c == '.' || c == '$' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || "_/.$-".contains(chars[i]))
                {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            _ => return Err(format!("Syntax error at position {i}")),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    input: &'a str,
    schema: &'a Schema,
}

impl Parser<'_> {
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn err(&self) -> GraphResp {
        syntax(
            &format!("Syntax error at token {}", self.pos + 1),
            self.input,
        )
    }

    fn expect(&mut self, t: Tok) -> Result<(), GraphResp> {
        if self.next() == Some(t) {
            Ok(())
        } else {
            Err(self.err())
        }
    }

    fn or(&mut self) -> Result<Expr, GraphResp> {
        let mut left = self.and()?;
        while self.peek_kw("or") {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, GraphResp> {
        let mut left = self.unary()?;
        while self.peek_kw("and") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, GraphResp> {
        if self.peek_kw("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn literal(&mut self) -> Result<Lit, GraphResp> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("true") => Ok(Lit::Bool(true)),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("false") => Ok(Lit::Bool(false)),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("null") => Ok(Lit::Null),
            _ => Err(self.err()),
        }
    }

    fn string_fn(&mut self, f: StrFn) -> Result<Expr, GraphResp> {
        self.expect(Tok::LParen)?;
        let Some(Tok::Ident(name)) = self.next() else {
            return Err(self.err());
        };
        self.expect(Tok::Comma)?;
        let Some(Tok::Str(v)) = self.next() else {
            return Err(self.err());
        };
        self.expect(Tok::RParen)?;
        let (canon, kind, ..) = self.schema.find(&name)?;
        if kind != Kind::Str {
            return Err(self.schema.unsupported(&name));
        }
        Ok(Expr::Func(f, canon, v))
    }

    fn primary(&mut self) -> Result<Expr, GraphResp> {
        match self.next() {
            Some(Tok::LParen) => {
                let e = self.or()?;
                self.expect(Tok::RParen)?;
                Ok(e)
            }
            Some(Tok::Ident(name)) if name.eq_ignore_ascii_case("startsWith") => {
                self.string_fn(StrFn::StartsWith)
            }
            Some(Tok::Ident(name)) if name.eq_ignore_ascii_case("endsWith") => {
                self.string_fn(StrFn::EndsWith)
            }
            Some(Tok::Ident(name)) => {
                if let Some((coll, lambda)) = name.split_once('/') {
                    if !lambda.eq_ignore_ascii_case("any") {
                        return Err(self.schema.unsupported(&name));
                    }
                    return self.lambda(coll);
                }
                let (canon, kind, ..) = self.schema.find(&name)?;
                if kind == Kind::List {
                    return Err(self.schema.unsupported(&name));
                }
                let op = match self.next() {
                    Some(Tok::Ident(op)) => op.to_ascii_lowercase(),
                    _ => return Err(self.err()),
                };
                match op.as_str() {
                    "eq" => Ok(Expr::Eq(canon, self.literal()?)),
                    "ne" => Ok(Expr::Ne(canon, self.literal()?)),
                    "in" => {
                        self.expect(Tok::LParen)?;
                        let mut lits = vec![self.literal()?];
                        while self.toks.get(self.pos) == Some(&Tok::Comma) {
                            self.pos += 1;
                            lits.push(self.literal()?);
                        }
                        self.expect(Tok::RParen)?;
                        Ok(Expr::In(canon, lits))
                    }
                    _ => Err(self.schema.unsupported(&name)),
                }
            }
            _ => Err(self.err()),
        }
    }

    fn lambda(&mut self, coll: &str) -> Result<Expr, GraphResp> {
        let (canon, kind, ..) = self.schema.find(coll)?;
        if kind != Kind::List {
            return Err(self.schema.unsupported(coll));
        }
        self.expect(Tok::LParen)?;
        let Some(Tok::Ident(var)) = self.next() else {
            return Err(self.err());
        };
        self.expect(Tok::Colon)?;
        let expr = match self.next() {
            Some(Tok::Ident(v)) if v == var => {
                if !self.peek_kw("eq") {
                    return Err(self.schema.unsupported(coll));
                }
                self.pos += 1;
                let Some(Tok::Str(s)) = self.next() else {
                    return Err(self.err());
                };
                Expr::Any(canon, None, s)
            }
            Some(Tok::Ident(f))
                if f.eq_ignore_ascii_case("startsWith") || f.eq_ignore_ascii_case("endsWith") =>
            {
                let sf = if f.eq_ignore_ascii_case("startsWith") {
                    StrFn::StartsWith
                } else {
                    StrFn::EndsWith
                };
                self.expect(Tok::LParen)?;
                if self.next() != Some(Tok::Ident(var.clone())) {
                    return Err(self.err());
                }
                self.expect(Tok::Comma)?;
                let Some(Tok::Str(s)) = self.next() else {
                    return Err(self.err());
                };
                self.expect(Tok::RParen)?;
                Expr::Any(canon, Some(sf), s)
            }
            _ => return Err(self.err()),
        };
        self.expect(Tok::RParen)?;
        Ok(expr)
    }
}

/// Parses a filter and checks it is allowed in the current mode.
pub(crate) fn parse(input: &str, advanced: bool, schema: &Schema) -> Result<Expr, GraphResp> {
    let toks = lex(input).map_err(|d| syntax(&d, input))?;
    let mut p = Parser {
        toks,
        pos: 0,
        input,
        schema,
    };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err(p.err());
    }
    check_support(&e, advanced, schema)?;
    Ok(e)
}

fn unsupported_query() -> GraphResp {
    GraphResp::error(400, "Request_UnsupportedQuery", "Unsupported Query.")
}

fn check_support(e: &Expr, advanced: bool, schema: &Schema) -> Result<(), GraphResp> {
    match e {
        Expr::Or(a, b) | Expr::And(a, b) => {
            check_support(a, advanced, schema)?;
            check_support(b, advanced, schema)
        }
        Expr::Not(a) => {
            if !advanced {
                return Err(unsupported_query());
            }
            check_support(a, advanced, schema)
        }
        Expr::Ne(..) if !advanced => Err(GraphResp::error(
            400,
            "Request_UnsupportedQuery",
            "Unsupported property filter clause operator 'NotEqualsMatch'.",
        )),
        Expr::Func(f, p, _) | Expr::Any(p, Some(f), _) => {
            let (_, _, starts, ends) = schema.find(p)?;
            match f {
                StrFn::StartsWith if !starts => Err(schema.unsupported(p)),
                StrFn::EndsWith if !ends => Err(schema.unsupported(p)),
                StrFn::EndsWith if !advanced => Err(unsupported_query()),
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

fn lit_matches(v: &FVal, lit: &Lit) -> bool {
    match (v, lit) {
        (FVal::Str(Some(s)), Lit::Str(l)) => s.to_lowercase() == l.to_lowercase(),
        (FVal::Str(None), Lit::Null) => true,
        (FVal::Bool(b), Lit::Bool(l)) => b == l,
        _ => false,
    }
}

fn str_fn(f: StrFn, s: &str, arg: &str) -> bool {
    let (s, arg) = (s.to_lowercase(), arg.to_lowercase());
    match f {
        StrFn::StartsWith => s.starts_with(&arg),
        StrFn::EndsWith => s.ends_with(&arg),
    }
}

/// Evaluates with case-insensitive string comparison, as directory queries do.
pub(crate) fn eval(e: &Expr, get: &dyn Fn(&str) -> FVal) -> bool {
    match e {
        Expr::Or(a, b) => eval(a, get) || eval(b, get),
        Expr::And(a, b) => eval(a, get) && eval(b, get),
        Expr::Not(a) => !eval(a, get),
        Expr::Eq(p, l) => lit_matches(&get(p), l),
        Expr::Ne(p, l) => !lit_matches(&get(p), l),
        Expr::In(p, ls) => {
            let v = get(p);
            ls.iter().any(|l| lit_matches(&v, l))
        }
        Expr::Func(f, p, arg) => match get(p) {
            FVal::Str(Some(s)) => str_fn(*f, &s, arg),
            _ => false,
        },
        Expr::Any(p, f, arg) => match get(p) {
            FVal::List(items) => items.iter().any(|i| match f {
                None => i.to_lowercase() == arg.to_lowercase(),
                Some(f) => str_fn(*f, i, arg),
            }),
            _ => false,
        },
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
