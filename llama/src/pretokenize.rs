//! Pre-tokenization for byte-level BPE: split a text into words before merges, the
//! way llama.cpp does for each `tokenizer.ggml.pre`.
//!
//! llama.cpp applies a list of regexes in turn, each one splitting every fragment the
//! previous one left (text between matches is kept as fragments too). Its regexes run
//! on ECMAScript `std::regex`, or on hand-written splitters that give the same words.
//! No regex crate runs without std, so this file has a small backtracking matcher for
//! the subset those patterns use: literals, classes, `\s \S \d \w \p{..}`, groups,
//! alternation, greedy `? * + {n,m}`, lookahead `(?= )` `(?! )` and `$`.
//!
//! Character classes follow llama.cpp exactly: when a regex names a Unicode category
//! (`\p{L}`...), every non-ASCII code point is first "collapsed" to one stand-in per
//! category (letter, number, punctuation, mark, symbol, whitespace, other), and
//! `\p{X}` matches the stand-in plus the ASCII characters of that category; `\p{Lu}`
//! and the other letter subcategories mean any letter there too. A regex without
//! categories runs on the code points themselves, with non-ASCII whitespace turned
//! into `\v` (C++'s `\s` only knows ASCII).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use unicode_properties::general_category::{GeneralCategoryGroup, UnicodeGeneralCategory};

use crate::error::{Error, Result};

// ------------------------------------------------------------------ UTF-8 and categories

/// Decode UTF-8 as llama.cpp does: a bad lead byte, a missing continuation byte or a
/// truncated sequence becomes U+FFFD and skips one byte; nothing panics.
pub fn code_points(text: &[u8]) -> Vec<u32> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let b = text[i] as u32;
        let (len, init) = match b {
            0x00..=0x7F => (1, b),
            0xC0..=0xDF => (2, b & 0x1F),
            0xE0..=0xEF => (3, b & 0x0F),
            0xF0..=0xF7 => (4, b & 0x07),
            _ => (0, 0), // a continuation byte or 0xF8.. cannot start a character
        };
        let cont = |k: usize| text.get(i + k).filter(|&&c| c & 0xC0 == 0x80).map(|&c| (c & 0x3F) as u32);
        let mut cp = Some(init);
        for k in 1..len {
            cp = cp.and_then(|v| cont(k).map(|c| (v << 6) | c));
        }
        match cp {
            // A 4-byte form above U+10FFFF has no UTF-8 encoding to give back: treat it
            // as invalid too (llama.cpp would throw here).
            Some(c) if len > 0 && c <= 0x10FFFF => {
                out.push(c);
                i += len;
            }
            _ => {
                out.push(0xFFFD);
                i += 1;
            }
        }
    }
    out
}

/// Append the UTF-8 encoding of `c` (any value up to U+10FFFF, surrogates included,
/// as llama.cpp encodes them).
pub fn push_utf8(out: &mut Vec<u8>, c: u32) {
    match c {
        0..=0x7F => out.push(c as u8),
        0x80..=0x7FF => out.extend_from_slice(&[0xC0 | (c >> 6) as u8, 0x80 | (c & 0x3F) as u8]),
        0x800..=0xFFFF => out.extend_from_slice(&[
            0xE0 | (c >> 12) as u8,
            0x80 | ((c >> 6) & 0x3F) as u8,
            0x80 | (c & 0x3F) as u8,
        ]),
        _ => out.extend_from_slice(&[
            0xF0 | (c >> 18) as u8,
            0x80 | ((c >> 12) & 0x3F) as u8,
            0x80 | ((c >> 6) & 0x3F) as u8,
            0x80 | (c & 0x3F) as u8,
        ]),
    }
}

/// Unicode White_Space (the set llama.cpp's `\s` uses).
pub fn is_whitespace(c: u32) -> bool {
    matches!(c, 0x09..=0x0D | 0x20 | 0x85 | 0xA0 | 0x1680 | 0x2000..=0x200A | 0x2028 | 0x2029 | 0x202F | 0x205F | 0x3000)
}

// Stand-ins of collapsed non-ASCII code points (the values llama.cpp uses).
const C_OTHER: u32 = 0xD0;
const C_NUMBER: u32 = 0xD1;
const C_LETTER: u32 = 0xD2;
const C_PUNCT: u32 = 0xD3;
const C_MARK: u32 = 0xD4;
const C_SYMBOL: u32 = 0xD5;
/// Vertical tab: what non-ASCII whitespace becomes, so that ASCII `\s` matches it.
const C_SPACE: u32 = 0x0B;

fn collapse(c: u32) -> u32 {
    if c < 0x80 {
        return c;
    }
    if is_whitespace(c) {
        return C_SPACE;
    }
    let Some(ch) = char::from_u32(c) else {
        return C_OTHER; // surrogates: category Cs
    };
    match ch.general_category_group() {
        GeneralCategoryGroup::Number => C_NUMBER,
        GeneralCategoryGroup::Letter => C_LETTER,
        GeneralCategoryGroup::Punctuation => C_PUNCT,
        GeneralCategoryGroup::Mark => C_MARK,
        GeneralCategoryGroup::Symbol => C_SYMBOL,
        _ => C_OTHER,
    }
}

// ------------------------------------------------------------------ the regex subset

#[derive(Clone, Debug)]
enum Item {
    Range(u32, u32),
    /// `\s` (ASCII whitespace, which collapsed whitespace maps onto); `\S` when true.
    Space(bool),
}

#[derive(Clone, Debug)]
struct Set {
    negated: bool,
    items: Vec<Item>,
}

impl Set {
    fn contains(&self, c: u32) -> bool {
        let hit = self.items.iter().any(|it| match *it {
            Item::Range(a, b) => a <= c && c <= b,
            Item::Space(neg) => matches!(c, 0x09..=0x0D | 0x20) != neg,
        });
        hit != self.negated
    }
}

#[derive(Debug)]
enum Node {
    /// One character.
    Set(Set),
    Seq(Vec<Node>),
    Alt(Vec<Node>),
    /// Greedy repetition, `max = u32::MAX` for unbounded.
    Repeat(Box<Node>, u32, u32),
    /// Lookahead; `true` = negative.
    Ahead(Box<Node>, bool),
    /// `$`: the end of the fragment.
    End,
}

/// One compiled pattern of a pre-tokenizer.
#[derive(Debug)]
pub struct Regex {
    root: Node,
    /// Categories collapsed (the pattern names `\p{..}`), else code points as they are.
    collapsed: bool,
}

/// The category escapes llama.cpp knows, with the ASCII characters each stands for.
fn category(name: &str) -> Option<(u32, &'static [(u8, u8)])> {
    const LETTERS: &[(u8, u8)] = &[(b'A', b'Z'), (b'a', b'z')];
    Some(match name {
        "N" => (C_NUMBER, &[(b'0', b'9')]),
        "L" | "Lu" | "Ll" | "Lt" | "Lm" | "Lo" => (C_LETTER, LETTERS),
        "P" => (
            C_PUNCT,
            &[(b'!', b'#'), (b'%', b'*'), (b',', b'/'), (b':', b';'), (b'?', b'@'), (b'[', b']'), (b'_', b'_'), (b'{', b'{'), (b'}', b'}')],
        ),
        "M" => (C_MARK, &[]),
        "S" => (C_SYMBOL, &[(b'$', b'$'), (b'+', b'+'), (b'<', b'>'), (b'^', b'^'), (b'`', b'`'), (b'|', b'|'), (b'~', b'~')]),
        _ => return None,
    })
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    src: &'a str,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> Error {
        Error::Unsupported(format!("pre-tokenizer regex {:?}: {what} at {}", self.src, self.pos))
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn alt(&mut self) -> Result<Node> {
        let mut alts = alloc::vec![self.seq()?];
        while self.eat('|') {
            alts.push(self.seq()?);
        }
        Ok(if alts.len() == 1 { alts.pop().unwrap() } else { Node::Alt(alts) })
    }

    fn seq(&mut self) -> Result<Node> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            items.push(self.quantifier(atom)?);
        }
        Ok(Node::Seq(items))
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.pos;
        while matches!(self.peek(), Some('0'..='9')) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect::<String>().parse().ok()
    }

    fn quantifier(&mut self, atom: Node) -> Result<Node> {
        let (min, max) = match self.peek() {
            Some('?') => (0, 1),
            Some('*') => (0, u32::MAX),
            Some('+') => (1, u32::MAX),
            Some('{') => {
                self.pos += 1;
                let min = self.number().ok_or_else(|| self.err("bad {n,m}"))?;
                let max = if self.eat(',') { self.number().unwrap_or(u32::MAX) } else { min };
                if self.peek() != Some('}') || max < min {
                    return Err(self.err("bad {n,m}"));
                }
                (min, max)
            }
            _ => return Ok(atom),
        };
        self.pos += 1;
        if matches!(self.peek(), Some('?' | '+')) {
            return Err(self.err("lazy or possessive quantifier"));
        }
        Ok(Node::Repeat(Box::new(atom), min, max))
    }

    fn atom(&mut self) -> Result<Node> {
        let c = self.peek().ok_or_else(|| self.err("unexpected end"))?;
        self.pos += 1;
        Ok(match c {
            '(' => {
                let look = if self.eat('?') {
                    if self.eat(':') {
                        None
                    } else if self.eat('=') {
                        Some(false)
                    } else if self.eat('!') {
                        Some(true)
                    } else {
                        return Err(self.err("unsupported group"));
                    }
                } else {
                    None // a capture group: captures are never used
                };
                let inner = self.alt()?;
                if !self.eat(')') {
                    return Err(self.err("missing )"));
                }
                match look {
                    Some(neg) => Node::Ahead(Box::new(inner), neg),
                    None => inner,
                }
            }
            '[' => Node::Set(self.class()?),
            '$' => Node::End,
            '\\' => Node::Set(Set { negated: false, items: self.escape()? }),
            '.' | '^' | '*' | '+' | '?' | '{' => return Err(self.err("unsupported operator")),
            c => Node::Set(Set { negated: false, items: alloc::vec![Item::Range(c as u32, c as u32)] }),
        })
    }

    /// After a backslash: the items it stands for.
    fn escape(&mut self) -> Result<Vec<Item>> {
        let c = self.peek().ok_or_else(|| self.err("trailing backslash"))?;
        self.pos += 1;
        let one = |c: u8| alloc::vec![Item::Range(c as u32, c as u32)];
        Ok(match c {
            's' => alloc::vec![Item::Space(false)],
            'S' => alloc::vec![Item::Space(true)],
            'd' => alloc::vec![Item::Range('0' as u32, '9' as u32)],
            'r' => one(b'\r'),
            'n' => one(b'\n'),
            't' => one(b'\t'),
            'p' => {
                if !self.eat('{') {
                    return Err(self.err("bad \\p"));
                }
                let start = self.pos;
                while self.peek().is_some_and(|c| c != '}') {
                    self.pos += 1;
                }
                let name: String = self.chars[start..self.pos].iter().collect();
                if !self.eat('}') {
                    return Err(self.err("bad \\p"));
                }
                let (code, ascii) = category(&name).ok_or_else(|| self.err("unknown category"))?;
                let mut v = alloc::vec![Item::Range(code, code)];
                v.extend(ascii.iter().map(|&(a, b)| Item::Range(a as u32, b as u32)));
                v
            }
            c if c.is_ascii_alphanumeric() => return Err(self.err("unsupported escape")),
            c => alloc::vec![Item::Range(c as u32, c as u32)],
        })
    }

    fn class(&mut self) -> Result<Set> {
        let negated = self.eat('^');
        let mut items = Vec::new();
        loop {
            let c = self.peek().ok_or_else(|| self.err("missing ]"))?;
            self.pos += 1;
            let lo = match c {
                ']' => break,
                '\\' => {
                    let mut esc = self.escape()?;
                    match esc.as_slice() {
                        [Item::Range(a, b)] if a == b => *a,
                        _ => {
                            items.append(&mut esc);
                            continue;
                        }
                    }
                }
                c => c as u32,
            };
            // A range `a-b` (a `-` before `]` is a literal).
            if self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|&c| c != ']') {
                self.pos += 1;
                let hi = match self.peek() {
                    Some('\\') => {
                        self.pos += 1;
                        match self.escape()?.as_slice() {
                            [Item::Range(a, b)] if a == b => *a,
                            _ => return Err(self.err("bad range")),
                        }
                    }
                    Some(c) => {
                        self.pos += 1;
                        c as u32
                    }
                    None => return Err(self.err("missing ]")),
                };
                if hi < lo {
                    return Err(self.err("bad range"));
                }
                items.push(Item::Range(lo, hi));
            } else {
                items.push(Item::Range(lo, lo));
            }
        }
        Ok(Set { negated, items })
    }
}

impl Regex {
    pub fn new(src: &str) -> Result<Regex> {
        let collapsed = ["\\p{N}", "\\p{L}", "\\p{P}", "\\p{M}", "\\p{S}"].iter().any(|c| src.contains(c));
        let mut p = Parser { chars: src.chars().collect(), pos: 0, src };
        if collapsed && p.chars.iter().any(|&c| c as u32 >= 0x80) {
            // llama.cpp refuses these too.
            return Err(p.err("Unicode categories together with non-ASCII characters"));
        }
        let root = p.alt()?;
        if p.pos != p.chars.len() {
            return Err(p.err("unbalanced )"));
        }
        Ok(Regex { root, collapsed })
    }

    /// The end of a match of `node` at `pos` for which `k(end)` accepts.
    fn run(node: &Node, t: &[u32], pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        match node {
            Node::Set(s) => pos < t.len() && s.contains(t[pos]) && k(pos + 1),
            Node::Seq(items) => Self::seq(items, t, pos, k),
            Node::Alt(alts) => {
                for a in alts {
                    if Self::run(a, t, pos, k) {
                        return true;
                    }
                }
                false
            }
            Node::Repeat(inner, min, max) => match &**inner {
                // One character repeated (nearly every case): count the run, then give
                // back one at a time, without recursing per character.
                Node::Set(s) => {
                    let (min, max) = (*min as usize, *max as usize);
                    let mut n = 0;
                    while n < max && pos + n < t.len() && s.contains(t[pos + n]) {
                        n += 1;
                    }
                    n >= min && (min..=n).rev().any(|c| k(pos + c))
                }
                _ => Self::repeat(inner, *min, *max, 0, t, pos, k),
            },
            Node::Ahead(inner, negative) => {
                let found = Self::run(inner, t, pos, &mut |_| true);
                found != *negative && k(pos)
            }
            Node::End => pos == t.len() && k(pos),
        }
    }

    fn seq(items: &[Node], t: &[u32], pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        match items.split_first() {
            None => k(pos),
            Some((first, rest)) => Self::run(first, t, pos, &mut |p| Self::seq(rest, t, p, k)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn repeat(inner: &Node, min: u32, max: u32, count: u32, t: &[u32], pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        // An iteration that matches nothing ends the loop (ECMAScript's empty check).
        if count < max
            && Self::run(inner, t, pos, &mut |p| p != pos && Self::repeat(inner, min, max, count + 1, t, p, k))
        {
            return true;
        }
        count >= min && k(pos)
    }

    /// Split each fragment (given as lengths, in characters) into matches and the
    /// text between them, as `std::regex_iterator` walks it.
    fn split(&self, cps: &[u32], fragments: &[usize]) -> Vec<usize> {
        let text: Vec<u32> = if self.collapsed {
            cps.iter().map(|&c| collapse(c)).collect()
        } else {
            cps.iter().map(|&c| if c >= 0x80 && is_whitespace(c) { C_SPACE } else { c }).collect()
        };
        let mut out = Vec::with_capacity(fragments.len());
        let mut start = 0;
        for &len in fragments {
            let t = &text[start..start + len];
            let mut done = 0; // end of the last match
            let mut from = 0; // where the next search starts
            while from <= len {
                let found = (from..=len).find_map(|s| {
                    let mut end = None;
                    Self::run(&self.root, t, s, &mut |e| {
                        end = Some(e);
                        true
                    });
                    end.map(|e| (s, e))
                });
                match found {
                    Some((s, e)) if e > s => {
                        if s > done {
                            out.push(s - done);
                        }
                        out.push(e - s);
                        done = e;
                        from = e;
                    }
                    // An empty match splits nothing; search on after it.
                    Some((s, _)) => from = s + 1,
                    None => break,
                }
            }
            if done < len {
                out.push(len - done);
            }
            start += len;
        }
        out
    }
}

// ------------------------------------------------------------------ pre-tokenizers

// The regexes of llama.cpp's llm_tokenizer_bpe for each pre-tokenizer type
// (src/llama-vocab.cpp), in its ASCII-only adapted forms.
const GPT2: &str = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN35: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const DEEPSEEK3: &str = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";

/// A pre-tokenizer family: the names of `tokenizer.ggml.pre` it serves, its regexes,
/// and the defaults llama.cpp sets for it.
struct Family {
    names: &'static [&'static str],
    regexes: &'static [&'static str],
    /// A word that is itself a token is emitted whole, without merges.
    ignore_merges: bool,
    /// `add_bos` default (the GGUF's `tokenizer.ggml.add_bos_token` overrides it).
    add_bos: bool,
}

const FAMILIES: &[Family] = &[
    Family {
        names: &["default"],
        regexes: &["[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]"],
        ignore_merges: false,
        add_bos: false,
    },
    Family {
        names: &["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"],
        regexes: &[LLAMA3],
        ignore_merges: true,
        add_bos: true,
    },
    Family { names: &["dbrx", "smaug-bpe"], regexes: &[LLAMA3], ignore_merges: false, add_bos: false },
    Family {
        names: &["deepseek-llm"],
        regexes: &[
            "[\r\n]",
            "\\s?[A-Za-z\u{b5}\u{c0}-\u{d6}\u{d8}-\u{f6}\u{f8}-\u{1ba}\u{1bc}-\u{1bf}\u{1c4}-\u{293}\u{295}-\u{2af}\u{370}-\u{373}\u{376}\u{377}\u{37b}-\u{37d}\u{37f}\u{386}\u{388}-\u{38a}\u{38c}\u{38e}-\u{3a1}\u{3a3}-\u{3f5}\u{3f7}-\u{481}\u{48a}-\u{52f}\u{531}-\u{556}\u{10a0}-\u{10c5}\u{13a0}-\u{13f5}\u{13f8}-\u{13fd}\u{1c90}-\u{1cba}\u{1cbd}-\u{1cbf}\u{1d00}-\u{1d2b}\u{1d6b}-\u{1d77}\u{1d79}-\u{1d9a}\u{1e00}-\u{1f15}\u{1f18}-\u{1f1d}\u{1f20}-\u{1f45}\u{1f48}-\u{1f4d}\u{1f50}-\u{1f57}\u{1f59}\u{1f5b}\u{1f5d}\u{1f5f}-\u{1f7d}\u{1f80}-\u{1fb4}\u{1fb6}-\u{1fbc}\u{1fbe}\u{1fc2}-\u{1fc4}\u{1fc6}-\u{1fcc}\u{1fd0}-\u{1fd3}\u{1fd6}-\u{1fdb}\u{1fe0}-\u{1fec}\u{1ff2}-\u{1ff4}\u{1ff6}-\u{1ffc}\u{2102}\u{2107}\u{210a}-\u{2113}\u{2115}\u{2119}-\u{211d}\u{2124}\u{2126}\u{2128}\u{212a}-\u{212d}\u{212f}-\u{2134}\u{2139}\u{213c}-\u{213f}\u{2145}-\u{2149}\u{214e}\u{2183}\u{2184}\u{2c00}-\u{2c7b}\u{2c7e}-\u{2ce4}\u{2ceb}-\u{2cee}\u{2cf2}\u{2cf3}\u{a640}-\u{a66d}\u{a680}-\u{a69b}\u{a722}-\u{a76f}\u{a771}-\u{a787}\u{a78b}-\u{a78e}\u{ab70}-\u{abbf}\u{fb00}-\u{fb06}\u{fb13}-\u{fb17}\u{ff21}-\u{ff3a}\u{ff41}-\u{ff5a}\u{10400}-\u{1044f}\u{104b0}-\u{104d3}\u{104d8}-\u{104fb}\u{10c80}-\u{10cb2}\u{10cc0}-\u{10cf2}\u{118a0}-\u{118df}\u{1e900}-\u{1e943}]+",
            "\\s?[!-/:-~\u{ff01}-\u{ff0f}\u{ff1a}-\u{ff5e}\u{2018}-\u{201f}\u{3000}-\u{3002}]+",
            "\\s+$",
            "[\u{4e00}-\u{9fa5}\u{800}-\u{4e00}\u{ac00}-\u{d7ff}]+",
            "\\p{N}+",
        ],
        ignore_merges: false,
        add_bos: false,
    },
    Family {
        names: &["deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"],
        regexes: &["\\p{N}{1,3}", "[\u{4e00}-\u{9fa5}\u{3040}-\u{309f}\u{30a0}-\u{30ff}]+", DEEPSEEK3],
        ignore_merges: false,
        add_bos: false,
    },
    Family {
        names: &["deepseek-coder"],
        regexes: &["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\u{4e00}-\u{9fa5}\u{800}-\u{4e00}\u{ac00}-\u{d7ff}]+", "\\p{N}"],
        ignore_merges: false,
        add_bos: false,
    },
    Family {
        names: &["falcon"],
        regexes: &["[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]"],
        ignore_merges: false,
        add_bos: false,
    },
    Family {
        names: &["starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2"],
        regexes: &["\\p{N}", GPT2],
        ignore_merges: false,
        add_bos: false,
    },
    Family {
        names: &[
            "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
            "modern-bert", "mpt", "olmo", "jais", "trillion", "granite-docling", "exaone4",
        ],
        regexes: &[GPT2],
        ignore_merges: false,
        add_bos: false,
    },
    Family {
        names: &["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open", "grok-2"],
        regexes: &[QWEN2],
        ignore_merges: false,
        add_bos: false,
    },
    Family { names: &["qwen35"], regexes: &[QWEN35], ignore_merges: false, add_bos: false },
    Family {
        names: &["poro-chat", "bloom", "gpt3-finnish"],
        regexes: &[" ?[^(\\s|.,!?\u{2026}\u{3002}\u{ff0c}\u{3001}\u{964}\u{6d4}\u{60c})]+"],
        ignore_merges: false,
        add_bos: false,
    },
    Family { names: &["viking"], regexes: &[" ?[^(\\s|.,!?\u{2026}\u{3002}\u{ff0c}\u{3001}\u{964}\u{6d4}\u{60c})]+", "\\p{N}"], ignore_merges: false, add_bos: false },
    Family { names: &["chatglm-bpe"], regexes: &[LLAMA3], ignore_merges: false, add_bos: false },
    Family { names: &["glm4", "glm5"], regexes: &[LLAMA3], ignore_merges: true, add_bos: false },
    Family {
        names: &["seed-coder"],
        regexes: &["(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
        ignore_merges: false,
        add_bos: false,
    },
    Family {
        names: &["bailingmoe", "bailingmoe2", "llada-moe"],
        regexes: &["'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"],
        ignore_merges: false,
        add_bos: false,
    },
];

/// A `tokenizer.ggml.pre` made ready to split text.
#[derive(Debug)]
pub struct PreTokenizer {
    pub name: String,
    regexes: Vec<Regex>,
    pub ignore_merges: bool,
    pub add_bos: bool,
}

impl PreTokenizer {
    /// The pre-tokenizer for a `tokenizer.ggml.pre` value (`None`: llama.cpp's default).
    pub fn new(pre: Option<&str>) -> Result<PreTokenizer> {
        let name = pre.unwrap_or("default");
        let family = FAMILIES.iter().find(|f| f.names.contains(&name)).ok_or_else(|| {
            Error::Unsupported(format!("BPE pre-tokenizer {name:?} (tokenizer.ggml.pre) is not implemented"))
        })?;
        let regexes = family.regexes.iter().map(|r| Regex::new(r)).collect::<Result<Vec<_>>>()?;
        Ok(PreTokenizer { name: name.into(), regexes, ignore_merges: family.ignore_merges, add_bos: family.add_bos })
    }

    /// Split `text` into words, each the UTF-8 of its code points (invalid input
    /// became U+FFFD).
    pub fn split(&self, text: &[u8]) -> Vec<Vec<u8>> {
        let cps = code_points(text);
        let mut fragments = alloc::vec![cps.len()];
        for r in &self.regexes {
            fragments = r.split(&cps, &fragments);
        }
        let mut words = Vec::with_capacity(fragments.len());
        let mut start = 0;
        for len in fragments {
            let mut w = Vec::with_capacity(len);
            for &c in &cps[start..start + len] {
                push_utf8(&mut w, c);
            }
            words.push(w);
            start += len;
        }
        words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(pre: &str, text: &str) -> Vec<String> {
        let p = PreTokenizer::new(Some(pre)).unwrap();
        p.split(text.as_bytes()).into_iter().map(|w| String::from_utf8(w).unwrap()).collect()
    }

    #[test]
    fn every_family_compiles() {
        for f in FAMILIES {
            for r in f.regexes {
                Regex::new(r).unwrap();
            }
        }
    }

    #[test]
    fn gpt2_splits_words_numbers_and_spaces() {
        assert_eq!(words("gpt-2", "Hello world's  123 !!"), ["Hello", " world", "'s", " ", " 123", " !!"]);
        assert_eq!(words("gpt-2", "a\tb"), ["a", "\t", "b"]);
    }

    #[test]
    fn llama3_groups_digits_by_three_and_keeps_newlines() {
        assert_eq!(words("llama-bpe", "1234567 x\n\n  y"), ["123", "456", "7", " x", "\n\n", " ", " y"]);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(code_points(b"a\xffb\xe2\x82"), [0x61, 0xFFFD, 0x62, 0xFFFD, 0xFFFD]);
    }
}
