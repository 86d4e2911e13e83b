import { LabIcon } from '@jupyterlab/ui-components';

// three bars under a rising line: runs and their metrics; `jp-icon3` follows the light and dark themes
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <rect x="3" y="14" width="4" height="7" rx="1"/>
    <rect x="10" y="10" width="4" height="11" rx="1"/>
    <rect x="17" y="6" width="4" height="15" rx="1"/>
    <path d="M3.2 10.6 9.5 5.4l3.4 2.7 6.6-5.4 1.3 1.5-7.9 6.4-3.4-2.7-5.1 4.2z"/>
  </g>
</svg>`;

export const mloIcon = new LabIcon({ name: 'mlo-workbench:logo', svgstr: svg });
