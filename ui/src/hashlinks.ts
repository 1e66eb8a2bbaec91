// KFP's own web UI routes with the URL fragment, and the kfp SDK prints such links after
// every call (http://HOST/#/runs/details/<id>). kfpHashPath maps them onto the box's pages for
// the same objects, so those links open the object rather than the run list.

const enc = encodeURIComponent;

/**
 * kfpHashPath returns the box's path for a KFP UI fragment such as "#/runs/details/<id>", or
 * null when the fragment is not a KFP route (an in-page anchor like "#main").
 */
export function kfpHashPath(hash: string): string | null {
  if (!hash.startsWith('#/')) return null;
  const [rawPath, rawQuery = ''] = hash.slice(1).split('?', 2);
  const parts = rawPath.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  const query = new URLSearchParams(rawQuery);
  const [section, kind, id, sub, subId] = parts;
  const details = kind === 'details' && id;
  switch (section) {
    case 'runs':
      if (details) return `/runs/${enc(id)}`;
      return '/runs';
    case 'experiments':
      if (details) return `/runs?experiment=${enc(id)}`;
      return '/experiments';
    case 'pipelines':
      if (details && sub === 'version' && subId) return `/pipelines/${enc(id)}/versions/${enc(subId)}`;
      if (details) return `/pipelines/${enc(id)}`;
      return '/pipelines';
    case 'recurringrun':
    case 'recurringruns':
      if (details) return `/runs?recurring=${enc(id)}`;
      return '/recurring';
    case 'artifacts':
      if (kind) return `/artifacts/${enc(kind)}`;
      return '/runs';
    case 'compare': {
      const runs = query.get('runlist') ?? query.get('runs') ?? '';
      return runs ? `/compare?runs=${enc(runs)}` : '/runs';
    }
    case 'archive':
    case 'executions':
    case 'newRun':
    case 'newPipelineVersion':
    case 'frontend_features':
    case 'start':
      return '/runs';
  }
  return null;
}
