// Starting inputs for each export kind, fitting the demo videos of `export-gql seed-demo`
// (640x360, 4 s or longer). The panel shows them as editable JSON.
import type {
  AnnotateExportInput,
  FramingExportInput,
  HighlightEffect,
  OverlayExportInput,
} from "./generated/graphql";

export const framingInput = (projectId: number): FramingExportInput => ({
  projectId,
  outputWidth: 640,
  outputHeight: 360,
  cropKeyframes: [
    { time: 0, x: 0, y: 0, width: 320, height: 180 },
    { time: 4, x: 320, y: 180, width: 320, height: 180 },
  ],
});

export const overlayInput = (
  projectId: number,
  effectType: HighlightEffect,
): OverlayExportInput => ({
  projectId,
  effectType,
  highlightRegions: [
    {
      startTime: 0.5,
      endTime: 3.5,
      keyframes: [
        { time: 0.5, x: 200, y: 180, radiusX: 90, radiusY: 70 },
        { time: 3.5, x: 440, y: 180, radiusX: 90, radiusY: 70 },
      ],
    },
  ],
});

export const annotateInput = (gameId: number): AnnotateExportInput => ({
  gameId,
  clips: [
    { startTime: 1, endTime: 3, name: "Goal", notes: "Top corner", rating: 5 },
    { startTime: 3.5, endTime: 4, name: "Save" },
  ],
});
