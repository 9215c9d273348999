/** Inline SVG icons (decorative: aria-hidden; the text next to them names things). */
import type { JSX } from 'preact';

const paths: Record<string, string> = {
  nodes: 'M3 4h14v5H3zM3 11h14v5H3zM6 6.5h.01M6 13.5h.01',
  containers: 'M3 6l7-3 7 3v8l-7 3-7-3zM3 6l7 3 7-3M10 9v8',
  images: 'M3 4h14v12H3zM3 13l4-4 3 3 2-2 5 5M13 7.5h.01',
  volumes: 'M4 5c0-1.1 2.7-2 6-2s6 .9 6 2-2.7 2-6 2-6-.9-6-2zM4 5v10c0 1.1 2.7 2 6 2s6-.9 6-2V5M4 10c0 1.1 2.7 2 6 2s6-.9 6-2',
  networks: 'M10 3v4M4 13v-2h12v2M10 7a1.5 1.5 0 100 .01M2.5 13h3v4h-3zM8.5 13h3v4h-3zM14.5 13h3v4h-3zM10 11v2',
  audit: 'M5 3h8l3 3v11H5zM13 3v3h3M8 9h5M8 12h5M8 15h3',
  account: 'M10 10a3.5 3.5 0 100-7 3.5 3.5 0 000 7zM3.5 17c.8-3 3.4-4.5 6.5-4.5s5.7 1.5 6.5 4.5',
  stacks: 'M10 3l7 3.5-7 3.5-7-3.5zM3 10l7 3.5 7-3.5M3 13.5l7 3.5 7-3.5',
  jobs: 'M4 5h2M4 10h2M4 15h2M8.5 5H16M8.5 10H16M8.5 15H16',
  menu: 'M3 5h14M3 10h14M3 15h14',
  close: 'M5 5l10 10M15 5L5 15',
  folder: 'M2.5 5.5a1 1 0 011-1h4l1.5 1.5h7.5a1 1 0 011 1V15a1 1 0 01-1 1h-13a1 1 0 01-1-1z',
  file: 'M5 2.5h6.5L15 6v11.5H5zM11.5 2.5V6H15',
  link: 'M8.5 11.5l3-3M7 9.5l-1.5 1.5a2.1 2.1 0 003 3L10 12.5M13 10.5l1.5-1.5a2.1 2.1 0 00-3-3L10 7.5',
  search: 'M9 15a6 6 0 100-12 6 6 0 000 12zM13.5 13.5L17 17',
  logs: 'M4 4h12v12H4zM7 8h6M7 11h6M7 14h3',
  terminal: 'M3 4h14v12H3zM6 8l2.5 2L6 12M10 13h4',
  info: 'M10 17a7 7 0 100-14 7 7 0 000 14zM10 9v4.5M10 6.5h.01',
  signout: 'M8 4H4v12h4M12 6.5L15.5 10 12 13.5M15.5 10H8',
  download: 'M10 3v10M6 9l4 4 4-4M4 16h12',
  upload: 'M10 14V4M6 8l4-4 4 4M4 16h12',
  refresh: 'M16 10a6 6 0 11-1.8-4.3M16 3.5v3.5h-3.5',
};

export function Icon({ name, size = 18 }: { name: keyof typeof paths | string; size?: number }): JSX.Element {
  return (
    <svg class="icon" viewBox="0 0 20 20" width={size} height={size} aria-hidden="true" focusable="false">
      <path d={paths[name] ?? ''} fill="none" stroke="currentColor" stroke-width="1.5" stroke-linecap="round" stroke-linejoin="round" />
    </svg>
  );
}
