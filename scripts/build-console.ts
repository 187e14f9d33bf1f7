import * as fs from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';

/**
 * Build the web console (apps/console) into dist/console: one bundled, minified ES module, one
 * stylesheet and index.html. The api serves exactly the files found there (apps/api/src/console).
 * esbuild bundles Preact and openapi-fetch in; nothing is loaded from another origin at run time.
 */
async function main(): Promise<void> {
  const root = path.resolve(__dirname, '..', '..');
  const src = path.join(root, 'apps', 'console');
  const out = path.join(root, 'dist', 'console');
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [path.join(src, 'src', 'main.tsx')],
    outfile: path.join(out, 'app.js'),
    bundle: true,
    format: 'esm',
    target: ['es2022'],
    minify: true,
    sourcemap: false,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    tsconfig: path.join(src, 'tsconfig.json'),
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  for (const f of ['index.html', 'app.css', 'favicon.svg']) fs.copyFileSync(path.join(src, f), path.join(out, f));
  const sizes = fs.readdirSync(out).map((f) => `${f} ${(fs.statSync(path.join(out, f)).size / 1024).toFixed(1)} KiB`);
  console.log(`console: ${sizes.join(', ')}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
