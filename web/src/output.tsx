import { useEffect, useRef, useState } from 'preact/hooks';
import { streamUrl } from './api.js';

interface OutputFrame {
  type: 'output' | 'log';
  lines?: string[];
  dropped?: number;
  tail?: boolean;
  message?: string;
}

/** Lines kept in the page; older ones scroll away. */
const KEEP = 500;

/**
 * A container's output, live: the logs channel with the container opt-in (`?container=`), which
 * answers its last lines, then each new line as the agent forwards it. Reconnects after a drop.
 */
export function useContainerOutput(nodeId: string, instanceId: string) {
  const [lines, setLines] = useState<string[]>([]);
  const [state, setState] = useState<'connecting' | 'live' | 'closed'>('connecting');
  const [refusal, setRefusal] = useState<string>();
  useEffect(() => {
    let ws: WebSocket | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let closed = false;
    const open = () => {
      ws = new WebSocket(streamUrl('logs', { node_id: nodeId, container: instanceId }));
      ws.onopen = () => {
        setState('live');
        setRefusal(undefined);
      };
      ws.onmessage = (m) => {
        let f: OutputFrame;
        try {
          f = JSON.parse(String(m.data)) as OutputFrame;
        } catch {
          return;
        }
        if (f.type !== 'output') return;
        const more = [
          ...(f.lines ?? []),
          ...(f.dropped ? [`… ${f.dropped} lines left out (rate limit)`] : []),
        ];
        // A tail after a reconnect repeats what is shown: it replaces it.
        setLines((old) => (f.tail ? more : [...old, ...more]).slice(-KEEP));
      };
      ws.onclose = (e) => {
        setState('closed');
        // 4404: its node has not reported the container yet (just started) or no longer has it.
        if (e.code === 4404 || e.code === 4400) setRefusal(e.reason);
        if (!closed && e.code !== 4400) timer = setTimeout(open, 3000);
      };
    };
    open();
    return () => {
      closed = true;
      clearTimeout(timer);
      ws?.close();
    };
  }, [nodeId, instanceId]);
  return { lines, state, refusal };
}

export function ContainerOutput({
  nodeId,
  instanceId,
  testId,
}: {
  nodeId: string;
  instanceId: string;
  testId?: string;
}) {
  const { lines, state, refusal } = useContainerOutput(nodeId, instanceId);
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    const el = pre.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lines]);
  return (
    <pre
      ref={pre}
      class="log"
      tabIndex={0}
      aria-label={`Live output of ${instanceId}`}
      data-testid={testId ?? 'live-output'}
      data-state={state}
      title={refusal}
    >
      {lines.length ? lines.join('\n') : 'Waiting for output…'}
    </pre>
  );
}
