import { api } from '../api.js';
import { useAction, useApi } from '../hooks.js';
import { Can, ErrorNote, Facts, Note, Records, Section } from '../ui.js';

type Row = Record<string, unknown>;

export function MaintenancePage() {
  const status = useApi<Row>('/api/maintenance/status', 15_000);
  const problems = useApi<{ problems: Row[] }>('/api/maintenance/problems', 15_000);
  const act = useAction();
  const reload = () => {
    status.reload();
    problems.reload();
  };
  return (
    <>
      <Section
        title="Daily maintenance"
        actions={
          <span class="actions">
            <Can need="operator">
              <button
                type="button"
                disabled={!!act.busy}
                onClick={() =>
                  act.run('Run maintenance now', () => api('POST', '/api/maintenance/run-now'), reload)
                }
              >
                Run now
              </button>
            </Can>
            <Can need="admin">
              {status.data?.enabled ? (
                <button
                  type="button"
                  disabled={!!act.busy}
                  onClick={() =>
                    act.run('Turn maintenance off', () => api('POST', '/api/maintenance/stop'), reload)
                  }
                >
                  Turn off
                </button>
              ) : (
                <button
                  type="button"
                  disabled={!!act.busy}
                  onClick={() =>
                    act.run('Turn maintenance on', () => api('POST', '/api/maintenance/start'), reload)
                  }
                >
                  Turn on
                </button>
              )}
            </Can>
          </span>
        }
      >
        <ErrorNote error={status.error ?? act.error} />
        <Note text={act.note} />
        <Facts data={status.data} />
      </Section>
      <Section title="Problems">
        <Records
          rows={problems.data?.problems}
          columns={['severity', 'type', 'node_id', 'message', 'detected_at', 'auto_fixable']}
          empty="No problems."
        />
      </Section>
    </>
  );
}

export function VaultPage() {
  const creds = useApi<Row[]>('/api/vault/', 30_000);
  return (
    <Section title="Vault (names only)">
      <ErrorNote error={creds.error} />
      <Records rows={creds.data} empty="No credential stored." />
    </Section>
  );
}
