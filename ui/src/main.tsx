import { render } from 'preact';
import { useEffect } from 'preact/hooks';
import './styles.css';
import { Page, lazyPage } from './components';
import { ExperimentList } from './pages/experiments';
import { RecurringList } from './pages/recurring';
import { RunList } from './pages/runs';
import { SystemPage } from './pages/system';

// Pages that need the graph, chart or Markdown libraries load on first use.
const RunDetails = lazyPage(() => import('./pages/rundetails').then((m) => m.RunDetails));
const NewRun = lazyPage(() => import('./pages/newrun').then((m) => m.NewRun));
const PipelineList = lazyPage(() => import('./pages/pipelines').then((m) => m.PipelineList));
const PipelineDetails = lazyPage(() => import('./pages/pipelines').then((m) => m.PipelineDetails));
const ArtifactPage = lazyPage(() => import('./pages/artifact').then((m) => m.ArtifactPage));
const Compare = lazyPage(() => import('./pages/compare').then((m) => m.Compare));
import { installLinkHandler, match, navigate, useLocation } from './router';
import { kfpHashPath } from './hashlinks';

const NAV: [string, string][] = [
  ['/runs', 'Runs'],
  ['/pipelines', 'Pipelines'],
  ['/experiments', 'Experiments'],
  ['/recurring', 'Recurring runs'],
  ['/system', 'System'],
];

function route(path: string) {
  let m: Record<string, string> | null;
  if (path === '/' || path === '') return null;
  if (path === '/runs') return <RunList />;
  if (path === '/runs/new') return <NewRun />;
  if ((m = match('/runs/:id', path))) return <RunDetails id={m.id} />;
  if (path === '/pipelines') return <PipelineList />;
  if ((m = match('/pipelines/:id', path))) return <PipelineDetails id={m.id} />;
  if ((m = match('/pipelines/:id/versions/:vid', path))) return <PipelineDetails id={m.id} versionId={m.vid} />;
  if (path === '/experiments') return <ExperimentList />;
  if (path === '/compare') return <Compare />;
  if ((m = match('/artifacts/:id', path))) return <ArtifactPage id={m.id} />;
  if (path === '/recurring') return <RecurringList />;
  if (path === '/system') return <SystemPage />;
  return (
    <Page title="Not found">
      <p>
        No page at <code>{path}</code>. <a href="/runs">Go to runs</a>.
      </p>
    </Page>
  );
}

function App() {
  const { path, query } = useLocation();
  useEffect(() => {
    if (path === '/' || path === '') navigate('/runs', true);
  }, [path]);
  useEffect(() => {
    const title = NAV.find(([p]) => path.startsWith(p))?.[1];
    document.title = title ? `${title} · kfp-box` : 'kfp-box';
  }, [path]);
  // Pages keyed by path and query start fresh on navigation.
  const key = path + '?' + query.toString();
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <nav class="sidebar" aria-label="Main">
        <a class="brand" href="/runs">
          kfp-box
        </a>
        <ul>
          {NAV.map(([p, label]) => (
            <li key={p}>
              <a href={p} aria-current={path === p || path.startsWith(p + '/') ? 'page' : undefined}>
                {label}
              </a>
            </li>
          ))}
        </ul>
        <form class="logout" method="post" action="/logout">
          <button type="submit">Log out</button>
        </form>
      </nav>
      <main id="main" key={key}>
        {route(path)}
      </main>
    </>
  );
}

/** followKfpLink opens the box's page for a KFP UI link (http://HOST/#/runs/details/<id>). */
function followKfpLink() {
  const to = kfpHashPath(location.hash);
  if (!to) return;
  if (to === location.pathname + location.search) history.replaceState(null, '', to);
  else navigate(to, true);
}

followKfpLink();
window.addEventListener('hashchange', followKfpLink);
installLinkHandler();
render(<App />, document.getElementById('app')!);
