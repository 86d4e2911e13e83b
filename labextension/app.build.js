// The standalone `mlo ui` app: lib-app/ (tsc -p tsconfig.app.json) bundled by webpack into one script, with
// JupyterLab's connection swapped for the app's own (src/app/shims), and one stylesheet: uPlot's, the panel's
// and the app's. Written to ../src/mlo/ui/static/, shipped in the wheel.
const fs = require('fs');
const path = require('path');
const webpack = require('webpack');

const out = path.resolve(__dirname, '../src/mlo/ui/static');
const shims = path.resolve(__dirname, 'lib-app/app/shims');

const config = {
  mode: 'production',
  entry: path.resolve(__dirname, 'lib-app/app/main.js'),
  output: { path: out, filename: 'app.js' },
  resolve: {
    alias: {
      '@jupyterlab/coreutils': path.join(shims, 'coreutils.js'),
      '@jupyterlab/services': path.join(shims, 'services.js')
    }
  },
  devtool: false,
  performance: { hints: false }
};

webpack(config, (error, stats) => {
  if (error || stats.hasErrors()) {
    console.error(error || stats.toString('errors-only'));
    process.exit(1);
  }
  const css = ['node_modules/uplot/dist/uPlot.min.css', 'style/base.css', 'src/compare/compare.css', 'style/app.css']
    .map(file => fs.readFileSync(path.resolve(__dirname, file), 'utf8'))
    .join('\n');
  fs.writeFileSync(path.join(out, 'app.css'), css);
  const size = name => fs.statSync(path.join(out, name)).size;
  console.log(`mlo ui app: app.js ${size('app.js')} bytes, app.css ${size('app.css')} bytes`);
});
