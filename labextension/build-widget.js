// The notebook widget's chart bundle (src/compare/widget.ts and what it imports, uPlot included) as one ES
// module for anywidget, with its CSS, into the Python package: `node build-widget.js` after `tsc -p
// tsconfig.widget.json`. Nothing is fetched at run time.
const fs = require('fs');
const path = require('path');
const webpack = require('webpack');

const out = path.resolve(__dirname, '../src/mlo/jupyter/static');
const config = {
  mode: 'production',
  entry: path.resolve(__dirname, 'lib-widget/compare/widget.js'),
  experiments: { outputModule: true },
  output: { path: out, filename: 'compare.js', library: { type: 'module' } },
  performance: { hints: false },
  devtool: false
};

webpack(config, (err, stats) => {
  if (err || stats.hasErrors()) {
    console.error(err || stats.toString({ all: false, errors: true }));
    process.exit(1);
  }
  const css = [
    '/* uPlot (MIT), bundled */',
    fs.readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    fs.readFileSync(path.resolve(__dirname, 'src/compare/compare.css'), 'utf8')
  ].join('\n');
  fs.writeFileSync(path.join(out, 'compare.css'), css);
  const size = fs.statSync(path.join(out, 'compare.js')).size;
  console.log(`compare.js ${(size / 1024).toFixed(1)} kB, compare.css ${(css.length / 1024).toFixed(1)} kB`);
});
