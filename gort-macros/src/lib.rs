//! Attribute macros for [gort](https://docs.rs/gort): `#[gort::main]` and `#[gort::test]`.
//!
//! Use them through `gort` (`#[gort::main]`), which re-exports them and documents them; this
//! crate is an implementation detail. The generated code names gort only by `::gort::...`
//! paths, so it works wherever `gort` is a dependency.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, ItemFn, Lit, Meta, ReturnType, Token};

/// Runs `fn main()` as the main goroutine of a gort runtime. Documented in `gort`.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Main, args.into(), item.into()).into()
}

/// Turns a plain `fn` into a `#[test]` run as a main goroutine. Documented in `gort`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Test, args.into(), item.into()).into()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Main => "#[gort::main]",
            Kind::Test => "#[gort::test]",
        }
    }
}

/// The attribute's arguments, each with the span of its value (for runtime messages).
#[derive(Default)]
struct Config {
    procs: Option<(usize, Span)>,
    stack_size: Option<(usize, Span)>,
}

/// Collects errors so that one expansion reports every mistake at once.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    fn at<T: ToTokens>(&mut self, tokens: T, msg: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, msg));
    }
}

fn parse_config(args: TokenStream2, errors: &mut Errors) -> Config {
    let mut config = Config::default();
    let mut seen: Vec<String> = Vec::new();
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args) {
        Ok(m) => m,
        Err(e) => {
            errors.push(e);
            return config;
        }
    };
    for meta in metas {
        let name = meta.path().get_ident().map(ToString::to_string);
        let slot = match name.as_deref() {
            Some("procs") => &mut config.procs,
            Some("stack_size") => &mut config.stack_size,
            _ => {
                let shown = meta.path().to_token_stream().to_string().replace(' ', "");
                errors.at(
                    meta.path(),
                    format!("unknown argument `{shown}`, expected `procs` or `stack_size`"),
                );
                continue;
            }
        };
        let name = name.unwrap_or_default();
        if seen.contains(&name) {
            errors.at(meta.path(), format!("duplicate argument `{name}`"));
            continue;
        }
        seen.push(name.clone());
        let example = if name == "procs" {
            "procs = 2"
        } else {
            "stack_size = 262144"
        };
        let nv = match meta {
            Meta::NameValue(nv) => nv,
            other => {
                errors.at(&other, format!("`{name}` takes a value, e.g. `{example}`"));
                continue;
            }
        };
        let value = match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Int(i), ..
            }) => match i.base10_parse::<usize>() {
                Ok(v) => v,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            },
            other => {
                errors.at(
                    other,
                    format!("`{name}` takes an integer literal, e.g. `{example}`"),
                );
                continue;
            }
        };
        if name == "procs" && value == 0 {
            errors.at(&nv.value, "`procs` must be at least 1");
            continue;
        }
        *slot = Some((value, nv.value.span()));
    }
    config
}

/// Rejects signatures a main goroutine cannot have, each error on the offending tokens.
fn check_signature(kind: Kind, f: &ItemFn, errors: &mut Errors) {
    let attr = kind.attr();
    let sig = &f.sig;
    if let Some(a) = &sig.asyncness {
        errors.at(
            a,
            format!(
                "gort has no async main: {attr} runs a plain `fn` as a goroutine, which blocks \
                 without `async`/`.await`; remove `async`"
            ),
        );
    }
    if let Some(c) = &sig.constness {
        errors.at(c, format!("{attr} cannot be used on a `const fn`"));
    }
    if let Some(u) = &sig.unsafety {
        errors.at(u, format!("{attr} cannot be used on an `unsafe fn`"));
    }
    if let Some(abi) = &sig.abi {
        errors.at(abi, format!("{attr} cannot be used on an `extern` fn"));
    }
    if !sig.generics.params.is_empty() {
        errors.at(
            &sig.generics,
            format!("{attr} cannot be used on a generic function"),
        );
    }
    if let Some(w) = &sig.generics.where_clause {
        errors.at(
            w,
            format!("{attr} cannot be used on a function with a `where` clause"),
        );
    }
    if !sig.inputs.is_empty() {
        errors.at(
            &sig.inputs,
            format!("{attr} takes a function without parameters"),
        );
    }
    if let Some(v) = &sig.variadic {
        errors.at(v, format!("{attr} takes a function without parameters"));
    }
    if kind == Kind::Test {
        if let Some(t) = f.attrs.iter().find(|a| is_test_attr(a)) {
            errors.at(
                t,
                "this function is already a test: #[gort::test] adds `#[test]`, remove this one",
            );
        }
    }
}

fn is_test_attr(a: &Attribute) -> bool {
    let p = a.path();
    p.is_ident("test")
        || (p.segments.len() >= 2 && p.segments.last().is_some_and(|s| s.ident == "test"))
            && !p.segments.iter().any(|s| s.ident == "gort")
}

fn expand(kind: Kind, args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let mut errors = Errors::default();
    let config = parse_config(args, &mut errors);
    let f = match syn::parse2::<ItemFn>(item) {
        Ok(f) => f,
        Err(e) => {
            errors.push(e);
            return errors.0.map(|e| e.to_compile_error()).unwrap_or_default();
        }
    };
    check_signature(kind, &f, &mut errors);
    if let Some(e) = errors.0 {
        // The errors, and a stand-in with the same name so that no second error ("`main`
        // function not found") buries the real one.
        let (vis, ident) = (&f.vis, &f.sig.ident);
        let err = e.to_compile_error();
        return quote! {
            #err
            #[allow(dead_code)]
            #vis fn #ident() {}
        };
    }
    generate(kind, &config, f)
}

fn generate(kind: Kind, config: &Config, f: ItemFn) -> TokenStream2 {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = f;
    let (outer, inner): (Vec<_>, Vec<_>) = attrs
        .into_iter()
        .partition(|a| matches!(a.style, syn::AttrStyle::Outer));
    let (ret, ret_span) = match &sig.output {
        ReturnType::Default => (quote!(()), Span::call_site()),
        ReturnType::Type(_, ty) => (ty.to_token_stream(), ty.span()),
    };
    let mut builder = quote!(::gort::Builder::new());
    if let Some((n, span)) = config.procs {
        builder = quote_spanned!(span=> #builder.procs(#n));
    }
    if let Some((n, span)) = config.stack_size {
        builder = quote_spanned!(span=> #builder.stack_size(#n));
    }
    let test_attr = match kind {
        Kind::Main => quote!(),
        Kind::Test => {
            // A deadlocked test panics (and fails) instead of exiting the whole test binary.
            builder = quote!(#builder.on_deadlock(::gort::Deadlock::Panic));
            quote!(#[::core::prelude::v1::test])
        }
    };
    let what = kind.attr();
    // Call-site spans: lints (clippy's included) treat this code as the macro's, not the
    // user's. The runtime is dropped after the body's value is computed, as in `gort::run`.
    // Spanned on the return type: a value that is not `Send` (`Box<dyn Error>`) is reported
    // there, where the fix goes.
    let run = quote_spanned!(ret_span=> __gort_runtime.run(__gort_body));
    let body = quote! {
        let __gort_body = move || -> #ret #block;
        let __gort_runtime = #builder
            .build()
            .unwrap_or_else(|e| ::core::panic!("{}: cannot start the gort runtime: {}", #what, e));
        #run
    };
    quote! {
        #test_attr
        #(#outer)*
        #vis #sig {
            #(#inner)*
            #body
        }
    }
}
