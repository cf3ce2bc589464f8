import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  label: string;
  values: (number | null)[];
  color: string;
  unit: string;
}

/** A uPlot line chart of series over shared times (epoch seconds). */
export function Chart({
  title,
  times,
  series,
  height = 220,
}: {
  title: string;
  times: number[];
  series: Series[];
  height?: number;
}) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const host = el.current;
    if (!host) return;
    const width = Math.max(320, host.clientWidth || 600);
    const plot = new uPlot(
      {
        title,
        width,
        height,
        scales: { x: { time: true } },
        axes: [{}, { values: (_u, ticks) => ticks.map((t) => `${t}${series[0]?.unit ?? ''}`) }],
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            spanGaps: false,
            value: (_u: uPlot, v: number | null) => (v === null ? '–' : `${v}${s.unit}`),
          })),
        ],
      },
      [times, ...series.map((s) => s.values)] as uPlot.AlignedData,
      host,
    );
    const onResize = () => plot.setSize({ width: Math.max(320, host.clientWidth), height });
    window.addEventListener('resize', onResize);
    return () => {
      window.removeEventListener('resize', onResize);
      plot.destroy();
    };
  }, [title, times, series, height]);
  return <div class="chart" ref={el} role="img" aria-label={`${title} chart`} />;
}
