// Drawing detections: one colour per class id, boxes with a label tag, line widths that scale with
// the image so a 4000 px photo and a 320 px frame both read well.

const kPalette = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#bfef45',
  '#fabed4', '#469990', '#dcbeff', '#9a6324', '#800000', '#aaffc3', '#808000', '#000075'];

export function classColor(classId) {
  const i = Number.isInteger(classId) ? classId : 0;
  return kPalette[((i % kPalette.length) + kPalette.length) % kPalette.length];
}

/** Detections at or above `threshold` (the server's list is sorted by score already). */
export function filterDetections(detections, threshold) {
  return (detections ?? []).filter((d) => d.score >= threshold);
}

export function detectionLabel(d) {
  return `${d.label ?? `class ${d.class_id}`} ${(d.score * 100).toFixed(0)}%`;
}

/**
 * Draws `detections` on ctx. Boxes are in the coordinates of an image `srcW` x `srcH`; the drawing
 * surface is `dstW` x `dstH` (they differ for downscaled live frames or a decoder that disagrees on size).
 */
export function drawDetections(ctx, detections, { srcW, srcH, dstW, dstH }) {
  const sx = srcW ? dstW / srcW : 1;
  const sy = srcH ? dstH / srcH : 1;
  const unit = Math.max(1, Math.min(dstW, dstH) / 400);
  const line = Math.max(1.5, 2 * unit);
  const fontPx = Math.round(Math.max(11, 11 * unit));
  ctx.save();
  ctx.lineWidth = line;
  ctx.font = `600 ${fontPx}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  // Lowest score first so the most confident boxes end on top.
  for (const d of [...detections].reverse()) {
    const [x1, y1, x2, y2] = d.box;
    const x = x1 * sx;
    const y = y1 * sy;
    const w = (x2 - x1) * sx;
    const h = (y2 - y1) * sy;
    const color = classColor(d.class_id);
    ctx.strokeStyle = color;
    ctx.strokeRect(x, y, w, h);
    const text = detectionLabel(d);
    const tw = ctx.measureText(text).width + 2 * unit * 3;
    const th = fontPx + 2 * unit * 2;
    const ty = y - th >= 0 ? y - th : y;  // above the box, or inside when the box touches the top
    ctx.fillStyle = color;
    ctx.fillRect(x - line / 2, ty, tw, th);
    ctx.fillStyle = '#ffffff';
    ctx.fillText(text, x - line / 2 + unit * 3, ty + unit * 2);
  }
  ctx.restore();
}

/** A caption bar across the top of the image: the classifier's label and probability. */
export function drawCaption(ctx, text, { dstW, dstH }) {
  const unit = Math.max(1, Math.min(dstW, dstH) / 320);
  const fontPx = Math.round(Math.max(12, 13 * unit));
  ctx.save();
  ctx.font = `600 ${fontPx}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  const h = fontPx + 8 * unit;
  ctx.fillStyle = 'rgba(17, 24, 39, 0.75)';
  ctx.fillRect(0, 0, dstW, h);
  ctx.fillStyle = '#ffffff';
  ctx.fillText(text, 6 * unit, 4 * unit);
  ctx.restore();
}

export function formatMs(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '—';
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`;
}
