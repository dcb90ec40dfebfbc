// Reference detections of face-api.js (the npm package @vladmandic/face-api@1.7.15, run in node with the
// TF.js CPU backend bundled in its dist/face-api.esm.js) for tests/parity/faceapi_test.cpp.
//
// Usage: node gen_faceapi.mjs OUT_DIR
//
// Reads OUT_DIR/inputs.json: {"images": [{"file": "0.rgb", "width": W, "height": H}, ...], "cases": [{"net":
// "tiny_face_detector" | "ssd_mobilenetv1", "score_threshold": T, "input_size": S}, ...]} where each .rgb
// holds W*H*3 bytes of RGB (the test writes them from images OpenCV decoded, so both sides see the same
// pixels), and writes OUT_DIR/faceapi.json: {"cases": [[[{x1, y1, x2, y2, score}, ...] per image] per case]}.
//
// The package comes from $VIGIL_FACEAPI_PACKAGE (a folder holding the unpacked package: dist/, model/), else
// `npm pack @vladmandic/face-api@1.7.15` into OUT_DIR (npm checks the registry's integrity hash). Its weights
// are read from the package's model/ folder, not vigil's copy.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const PACKAGE = '@vladmandic/face-api@1.7.15';

function packageDir(outDir) {
  if (process.env.VIGIL_FACEAPI_PACKAGE) return process.env.VIGIL_FACEAPI_PACKAGE;
  const tgz = execFileSync('npm', ['pack', '--silent', PACKAGE], { cwd: outDir, encoding: 'utf8' }).trim();
  execFileSync('tar', ['-xzf', path.join(outDir, tgz.split('\n').pop()), '-C', outDir]);
  return path.join(outDir, 'package');
}

const outDir = process.argv[2];
if (!outDir) {
  console.error('usage: node gen_faceapi.mjs OUT_DIR');
  process.exit(2);
}
const pkg = packageDir(outDir);
// The bundle's node platform wants util.TextEncoder from a `require` it does not have; as a "browser" it uses
// the global TextEncoder node has. Nothing else of the browser is touched: inputs are tensors, not canvases.
globalThis.window = globalThis;
globalThis.document = {};
const faceapi = await import(path.join(pkg, 'dist', 'face-api.esm.js'));
const { tf } = faceapi;
await tf.setBackend('cpu');
await tf.ready();

function load(net, name) {
  const dir = path.join(pkg, 'model');
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, `${name}_model-weights_manifest.json`), 'utf8'));
  const map = {};
  for (const group of manifest) {
    const bytes = Buffer.concat(group.paths.map((p) => fs.readFileSync(path.join(dir, p))));
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    Object.assign(map, tf.io.decodeWeights(buffer, group.weights));
  }
  net.loadFromWeightMap(map);
}
load(faceapi.nets.tinyFaceDetector, 'tiny_face_detector');
load(faceapi.nets.ssdMobilenetv1, 'ssd_mobilenetv1');

const inputs = JSON.parse(fs.readFileSync(path.join(outDir, 'inputs.json'), 'utf8'));
const tensors = inputs.images.map((im) => {
  const bytes = fs.readFileSync(path.join(outDir, im.file));
  if (bytes.length !== im.width * im.height * 3) throw new Error(`${im.file}: expected ${im.width}x${im.height}x3 bytes`);
  return tf.tensor3d(Float32Array.from(bytes), [im.height, im.width, 3], 'float32');
});

const results = [];
for (const c of inputs.cases) {
  const perImage = [];
  for (const t of tensors) {
    const faces = c.net === 'tiny_face_detector'
      ? await faceapi.nets.tinyFaceDetector.locateFaces(t, new faceapi.TinyFaceDetectorOptions({ inputSize: c.input_size, scoreThreshold: c.score_threshold }))
      : await faceapi.nets.ssdMobilenetv1.locateFaces(t, new faceapi.SsdMobilenetv1Options({ minConfidence: c.score_threshold }));
    perImage.push(faces.map((f) => ({
      x1: f.box.x, y1: f.box.y, x2: f.box.x + f.box.width, y2: f.box.y + f.box.height, score: f.score,
    })));
  }
  results.push(perImage);
}
fs.writeFileSync(path.join(outDir, 'faceapi.json'), JSON.stringify({ package: PACKAGE, tf: tf.version_core, cases: results }));
