// Client for kfp-box's public HTTP API: KFP v2beta1 plus kfp-box's additions. Responses use
// snake_case keys, enum names and int64 values as strings; everything optional may be absent.

export const API = '/apis/v2beta1';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Dict = { [k: string]: any };

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

async function errorFrom(res: Response): Promise<ApiError> {
  let msg = `${res.status} ${res.statusText}`;
  try {
    const text = await res.text();
    try {
      const j = JSON.parse(text);
      msg = j.error_message || j.message || j.error || msg;
      if (j.details?.[0]?.message) msg = j.details[0].message;
    } catch {
      if (text.trim()) msg = text.trim().slice(0, 300);
    }
  } catch {
    /* body unreadable: keep the status line */
  }
  return new ApiError(res.status, msg);
}

export async function call<T = Dict>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const init: RequestInit = { method, signal, headers: { Accept: 'application/json' } };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Dict)['Content-Type'] = 'application/json';
  }
  const res = await fetch(path.startsWith('/') ? path : `${API}/${path}`, init);
  if (res.status === 401) {
    // The session ended (logged out elsewhere, expired, revoked): log in again, then come back.
    location.assign('/login?next=' + encodeURIComponent(location.pathname + location.search));
  }
  if (!res.ok) throw await errorFrom(res);
  const text = await res.text();
  return (text ? JSON.parse(text) : {}) as T;
}

export const get = <T = Dict>(path: string, signal?: AbortSignal) => call<T>('GET', path, undefined, signal);
export const post = <T = Dict>(path: string, body?: unknown) => call<T>('POST', path, body ?? {});
export const del = (path: string) => call('DELETE', path);

// ---- listing ----

export type Predicate = { key: string; operation: string; string_value?: string; int_value?: number; timestamp_value?: string };

export interface ListQuery {
  page_size?: number;
  page_token?: string;
  sort_by?: string;
  predicates?: Predicate[];
  extra?: Record<string, string>;
}

export interface ListResult<T> {
  items: T[];
  next_page_token: string;
  total_size: number;
}

export async function list<T = Dict>(path: string, key: string, q: ListQuery = {}, signal?: AbortSignal): Promise<ListResult<T>> {
  const p = new URLSearchParams();
  if (q.page_size) p.set('page_size', String(q.page_size));
  if (q.page_token) p.set('page_token', q.page_token);
  if (q.sort_by) p.set('sort_by', q.sort_by);
  if (q.predicates?.length) p.set('filter', JSON.stringify({ predicates: q.predicates }));
  for (const [k, v] of Object.entries(q.extra ?? {})) if (v) p.set(k, v);
  const qs = p.toString();
  const r = await get(`${path}${qs ? `?${qs}` : ''}`, signal);
  return { items: (r[key] ?? []) as T[], next_page_token: r.next_page_token ?? '', total_size: Number(r.total_size ?? 0) };
}

/** Fetches every page of a list (bounded), for small collections such as experiments. */
export async function listAll<T = Dict>(path: string, key: string, q: ListQuery = {}, max = 1000): Promise<T[]> {
  const out: T[] = [];
  let token = '';
  do {
    const r = await list<T>(path, key, { ...q, page_size: 200, page_token: token });
    out.push(...r.items);
    token = r.next_page_token;
  } while (token && out.length < max);
  return out;
}

// ---- runs ----

export const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'SKIPPED', 'CANCELED', 'CANCELLED']);
export const isTerminal = (state?: string) => !!state && TERMINAL.has(state);

export const runLink = (id: string) => `/runs/${encodeURIComponent(id)}`;

export function downloadURL(artifactId: string): string {
  return `${API}/artifacts/${encodeURIComponent(artifactId)}:download`;
}

/** Reads the first bytes of an artifact (a Range request) as text. */
export async function artifactText(artifactId: string, maxBytes = 256 * 1024): Promise<{ text: string; truncated: boolean }> {
  const res = await fetch(downloadURL(artifactId), { headers: { Range: `bytes=0-${maxBytes - 1}` } });
  if (!res.ok) throw await errorFrom(res);
  const buf = await res.arrayBuffer();
  const total = Number(res.headers.get('Content-Range')?.split('/')[1] ?? buf.byteLength);
  const bytes = buf.byteLength > maxBytes ? buf.slice(0, maxBytes) : buf;
  return { text: new TextDecoder().decode(bytes), truncated: total > bytes.byteLength };
}

// ---- pipeline specs ----

/** unwrapSpec returns the PipelineSpec of a stored spec, which may wrap a platform spec. */
export function unwrapSpec(spec: Dict | undefined): Dict | undefined {
  if (!spec) return undefined;
  if (!spec.root && spec.pipeline_spec) return spec.pipeline_spec;
  return spec;
}

export interface ParamDef {
  name: string;
  type: string; // STRING, NUMBER_INTEGER, NUMBER_DOUBLE, BOOLEAN, LIST, STRUCT
  default?: Json;
  optional: boolean;
  description?: string;
}

export function rootParams(spec: Dict | undefined): ParamDef[] {
  const params = unwrapSpec(spec)?.root?.inputDefinitions?.parameters ?? {};
  return Object.entries(params).map(([name, d]: [string, any]) => ({
    name,
    type: d.parameterType ?? 'STRING',
    default: d.defaultValue,
    optional: !!d.isOptional,
    description: d.description,
  }));
}

// ---- small formatters ----

export function fmtTime(t?: string): string {
  if (!t || t.startsWith('1970-01-01')) return '';
  const d = new Date(t);
  return isNaN(d.getTime()) ? t : d.toLocaleString();
}

export function fmtDuration(start?: string, end?: string): string {
  if (!start || start.startsWith('1970')) return '';
  const s = new Date(start).getTime();
  const e = end && !end.startsWith('1970') ? new Date(end).getTime() : Date.now();
  let sec = Math.max(0, Math.round((e - s) / 1000));
  const h = Math.floor(sec / 3600);
  sec -= h * 3600;
  const m = Math.floor(sec / 60);
  sec -= m * 60;
  return h ? `${h}h ${m}m ${sec}s` : m ? `${m}m ${sec}s` : `${sec}s`;
}

export function fmtBytes(n?: number | string): string {
  const v = Number(n ?? 0);
  if (!isFinite(v)) return '';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = v;
  while (x >= 1024 && i < u.length - 1) {
    x /= 1024;
    i++;
  }
  return `${i ? x.toFixed(1) : x} ${u[i]}`;
}

export function fmtValue(v: unknown): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}
