import { fmtTime, get } from '../api';
import { ArtifactPreview, artifactName, artifactTask } from '../artifacts';
import { ErrorBox, KV, Loading, Page, useAsync } from '../components';

/** ArtifactPage shows one artifact by id (a link that can be shared) with its preview. */
export function ArtifactPage({ id }: { id: string }) {
  const a = useAsync((s) => get(`artifacts/${encodeURIComponent(id)}`, s), [id]);
  if (a.error) return <Page title="Artifact">{<ErrorBox error={a.error} what={`Artifact ${id}`} />}</Page>;
  if (!a.data) return <Page title="Artifact">{<Loading />}</Page>;
  const x = a.data;
  return (
    <Page
      title={
        <>
          {x.run_id ? <a href={`/runs/${encodeURIComponent(x.run_id)}`}>Run</a> : 'Artifact'} / {artifactName(x)}
        </>
      }
    >
      <p class="muted">
        {artifactTask(x) && <>Produced by task {artifactTask(x)}. </>}
        {x.created_at && <>Created {fmtTime(x.created_at)}.</>}
      </p>
      <ArtifactPreview artifact={x} />
      <h2>Metadata</h2>
      <KV data={x.metadata} label="Metadata" />
    </Page>
  );
}
