// Pure parsing helpers: run parameters typed by the IR, and CSV previews.
import type { Json, ParamDef } from './api';

/** toText renders a parameter value for its input field. */
export function toText(p: ParamDef, v: Json | undefined): string {
  if (v === undefined || v === null) return '';
  if (p.type === 'LIST' || p.type === 'STRUCT') return JSON.stringify(v, null, 1);
  return String(v);
}

/** parseParam converts a field's text into the JSON value of the parameter's type. */
export function parseParam(p: ParamDef, text: string): Json | undefined {
  if (p.type === 'BOOLEAN') return text === 'true';
  if (text.trim() === '') {
    if (p.optional || p.default !== undefined) return undefined;
    if (p.type === 'STRING') return '';
    throw new Error(`parameter ${p.name} needs a value`);
  }
  switch (p.type) {
    case 'NUMBER_INTEGER': {
      const n = Number(text);
      if (!Number.isInteger(n)) throw new Error(`parameter ${p.name} must be an integer`);
      return n;
    }
    case 'NUMBER_DOUBLE': {
      const n = Number(text);
      if (!isFinite(n)) throw new Error(`parameter ${p.name} must be a number`);
      return n;
    }
    case 'LIST':
    case 'STRUCT': {
      let v: Json;
      try {
        v = JSON.parse(text);
      } catch {
        throw new Error(`parameter ${p.name} must be JSON`);
      }
      if (p.type === 'LIST' && !Array.isArray(v)) throw new Error(`parameter ${p.name} must be a JSON list`);
      if (p.type === 'STRUCT' && (typeof v !== 'object' || v === null || Array.isArray(v))) throw new Error(`parameter ${p.name} must be a JSON object`);
      return v;
    }
    default:
      return text;
  }
}

/** parseCSV parses RFC 4180 CSV (quotes, doubled quotes, CRLF). */
export function parseCSV(text: string, maxRows = 200): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let q = false;
  for (let i = 0; i < text.length && rows.length < maxRows; i++) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') q = false;
      else field += c;
    } else if (c === '"') q = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if ((field || row.length) && rows.length < maxRows) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

export function looksLikeCSV(text: string): boolean {
  const lines = text.split(/\r?\n/).filter((l) => l.trim()).slice(0, 20);
  if (lines.length < 2) return false;
  const n = parseCSV(lines[0])[0]?.length ?? 0;
  return n > 1 && lines.every((l) => (parseCSV(l)[0]?.length ?? 0) === n);
}

