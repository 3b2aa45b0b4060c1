/**
 * xl's domain configuration syntax (tools/libs/util, libxlu_cfg): `key = value`
 * settings ended by a newline or ';', values a number, a "string" or
 * 'string', or a [list, of, values]; '#' starts a comment. Enough to read the
 * settings xl create needs, with xl's error message for anything else.
 */

export type XlValue = string | number | XlValue[];

export class XlConfigError extends Error {
  override readonly name = 'XlConfigError';
}

interface Token {
  kind: 'ident' | 'string' | 'number' | 'punct' | 'newline' | 'eof';
  text: string;
  line: number;
}

function tokenize(text: string, file: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '\n') {
      out.push({ kind: 'newline', text: '\\n', line });
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      let s = '';
      for (; j < text.length && text[j] !== c; j++) {
        if (text[j] === '\n') throw new XlConfigError(`${file}:${line}: config parsing error near \`${c}${s}': syntax error, unterminated string`);
        if (c === '"' && text[j] === '\\' && j + 1 < text.length) {
          j++;
          s += text[j] === 'n' ? '\n' : (text[j] as string);
        } else {
          s += text[j];
        }
      }
      if (j >= text.length) throw new XlConfigError(`${file}:${line}: config parsing error near \`${c}${s}': syntax error, unterminated string`);
      out.push({ kind: 'string', text: s, line });
      i = j + 1;
    } else if (/[0-9]/.test(c)) {
      const m = /^(0x[0-9a-fA-F]+|[0-9]+)/.exec(text.slice(i)) as RegExpExecArray;
      out.push({ kind: 'number', text: m[0], line });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_.-]*/.exec(text.slice(i)) as RegExpExecArray;
      out.push({ kind: 'ident', text: m[0], line });
      i += m[0].length;
    } else if ('=;[],+'.includes(c)) {
      out.push({ kind: 'punct', text: c, line });
      i++;
    } else {
      throw new XlConfigError(`${file}:${line}: config parsing error near \`${c}': syntax error, unexpected $undefined`);
    }
  }
  out.push({ kind: 'eof', text: '', line });
  return out;
}

function unexpected(file: string, t: Token, expecting: string): XlConfigError {
  const what = t.kind === 'ident' ? 'IDENT' : t.kind === 'string' ? 'STRING' : t.kind === 'number' ? 'NUMBER' : t.kind === 'newline' ? 'NEWLINE' : t.kind === 'eof' ? 'end of file' : `'${t.text}'`;
  return new XlConfigError(`${file}:${t.line}: config parsing error near \`${t.text}': syntax error, unexpected ${what}, expecting ${expecting}`);
}

/** The settings in file order (a later one of the same name wins, as in xl). */
export function parseXlConfig(text: string, file: string): Map<string, XlValue> {
  const toks = tokenize(text, file);
  const out = new Map<string, XlValue>();
  let i = 0;
  const peek = (): Token => toks[i] as Token;
  const value = (): XlValue => {
    const t = peek();
    if (t.kind === 'string') {
      i++;
      return t.text;
    }
    if (t.kind === 'number') {
      i++;
      return t.text.startsWith('0x') ? parseInt(t.text, 16) : Number(t.text);
    }
    if (t.kind === 'punct' && t.text === '[') {
      i++;
      const list: XlValue[] = [];
      for (;;) {
        while (peek().kind === 'newline') i++;
        if (peek().kind === 'punct' && peek().text === ']') {
          i++;
          return list;
        }
        list.push(value());
        while (peek().kind === 'newline') i++;
        const sep = peek();
        if (sep.kind === 'punct' && sep.text === ',') i++;
        else if (!(sep.kind === 'punct' && sep.text === ']')) throw unexpected(file, sep, "',' or ']'");
      }
    }
    throw unexpected(file, t, "STRING or NUMBER or '['");
  };
  for (;;) {
    const t = peek();
    if (t.kind === 'eof') break;
    if (t.kind === 'newline' || (t.kind === 'punct' && t.text === ';')) {
      i++;
      continue;
    }
    if (t.kind !== 'ident') throw unexpected(file, t, 'IDENT');
    i++;
    const eq = peek();
    if (!(eq.kind === 'punct' && eq.text === '=')) throw unexpected(file, eq, "'='");
    i++;
    out.set(t.text, value());
    const end = peek();
    if (!(end.kind === 'newline' || end.kind === 'eof' || (end.kind === 'punct' && end.text === ';'))) throw unexpected(file, end, "NEWLINE or ';'");
  }
  return out;
}
