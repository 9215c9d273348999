// Stylesheets are bundled by esbuild (src/hub/ui/ui-assets.ts); importing one has no value.
declare module '*.css';
