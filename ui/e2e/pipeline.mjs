// The pipeline the browser tests upload: KFP IR (schema 2.1.0) written by hand, three container
// tasks running POSIX `sh -c` scripts (busybox is enough), typed parameters, an output
// parameter, Markdown, CSV, HTML and PNG artifacts, an artifact passed between tasks, and per-step
// metrics in the log.

export const IMAGE = process.env.KFPBOX_E2E_IMAGE || 'docker.io/library/busybox:1.36';

const q = (s) => JSON.stringify(s); // YAML accepts JSON strings

// A 16x16 two-colour PNG as printf octal escapes, for the image preview.
const PNG = String.raw`\211\120\116\107\015\012\032\012\000\000\000\015\111\110\104\122\000\000\000\020\000\000\000\020\010\002\000\000\000\220\221\150\066\000\000\000\032\111\104\101\124\170\332\143\120\115\176\215\025\211\055\366\302\212\030\106\065\214\152\030\276\032\000\232\154\073\020\150\245\241\102\000\000\000\000\111\105\116\104\256\102\140\202`;

const trainScript = [
  'set -e',
  'msg="$1"; steps="$2"; rate="$3"; report="$4"; table="$5"; summary="$6"; page="$7"; plot="$8"',
  'echo "training with message=$msg rate=$rate"',
  'mkdir -p "$(dirname "$report")" "$(dirname "$table")" "$(dirname "$summary")" "$(dirname "$page")" "$(dirname "$plot")"',
  'echo "step,loss" > "$table"',
  'i=1',
  'while [ "$i" -le "$steps" ]; do',
  '  loss=$((1000 / i))',
  '  echo "step=$i loss=$loss acc=$((i * 20))"',
  '  echo "$i,$loss" >> "$table"',
  '  i=$((i + 1))',
  'done',
  'printf "# Report\\n\\nMessage: **%s**, %s steps.\\n" "$msg" "$steps" > "$report"',
  'printf "%s after %s steps" "$msg" "$steps" > "$summary"',
  'printf "<!doctype html><html><body><h1>HTML report</h1><p>%s</p></body></html>" "$msg" > "$page"',
  `printf '${PNG}' > "$plot"`,
  'echo "training done"',
].join('\n');

const reportScript = 'echo "summary: $1"';
const checkScript = 'echo "verbose=$1"; echo "table:"; cat "$2"';

export function pipelineYAML(name = 'e2e-ui-pipeline') {
  return `# PIPELINE DEFINITION (written by kfp-box's browser tests)
# Name: ${name}
components:
  comp-train:
    executorLabel: exec-train
    inputDefinitions:
      parameters:
        message: {parameterType: STRING}
        steps: {parameterType: NUMBER_INTEGER}
        rate: {parameterType: NUMBER_DOUBLE}
    outputDefinitions:
      artifacts:
        report:
          artifactType: {schemaTitle: system.Markdown, schemaVersion: 0.0.1}
        table:
          artifactType: {schemaTitle: system.Dataset, schemaVersion: 0.0.1}
        page:
          artifactType: {schemaTitle: system.HTML, schemaVersion: 0.0.1}
        plot:
          artifactType: {schemaTitle: system.Artifact, schemaVersion: 0.0.1}
      parameters:
        summary: {parameterType: STRING}
  comp-report:
    executorLabel: exec-report
    inputDefinitions:
      parameters:
        summary: {parameterType: STRING}
  comp-check:
    executorLabel: exec-check
    inputDefinitions:
      artifacts:
        table:
          artifactType: {schemaTitle: system.Dataset, schemaVersion: 0.0.1}
      parameters:
        verbose: {parameterType: BOOLEAN}
deploymentSpec:
  executors:
    exec-train:
      container:
        image: ${IMAGE}
        command: [sh, -c, ${q(trainScript)}, sh]
        args:
        - "{{$.inputs.parameters['message']}}"
        - "{{$.inputs.parameters['steps']}}"
        - "{{$.inputs.parameters['rate']}}"
        - "{{$.outputs.artifacts['report'].path}}"
        - "{{$.outputs.artifacts['table'].path}}"
        - "{{$.outputs.parameters['summary'].output_file}}"
        - "{{$.outputs.artifacts['page'].path}}"
        - "{{$.outputs.artifacts['plot'].path}}"
    exec-report:
      container:
        image: ${IMAGE}
        command: [sh, -c, ${q(reportScript)}, sh]
        args: ["{{$.inputs.parameters['summary']}}"]
    exec-check:
      container:
        image: ${IMAGE}
        command: [sh, -c, ${q(checkScript)}, sh]
        args: ["{{$.inputs.parameters['verbose']}}", "{{$.inputs.artifacts['table'].path}}"]
pipelineInfo:
  name: ${name}
root:
  dag:
    tasks:
      train:
        cachingOptions: {enableCache: true}
        componentRef: {name: comp-train}
        inputs:
          parameters:
            message: {componentInputParameter: message}
            steps: {componentInputParameter: steps}
            rate: {componentInputParameter: rate}
        taskInfo: {name: train}
      report:
        cachingOptions: {enableCache: true}
        componentRef: {name: comp-report}
        dependentTasks: [train]
        inputs:
          parameters:
            summary:
              taskOutputParameter: {outputParameterKey: summary, producerTask: train}
        taskInfo: {name: report}
      check:
        cachingOptions: {enableCache: true}
        componentRef: {name: comp-check}
        dependentTasks: [train]
        inputs:
          artifacts:
            table:
              taskOutputArtifact: {outputArtifactKey: table, producerTask: train}
          parameters:
            verbose: {componentInputParameter: verbose}
        taskInfo: {name: check}
  inputDefinitions:
    parameters:
      message: {parameterType: STRING, defaultValue: hello}
      steps: {parameterType: NUMBER_INTEGER, defaultValue: 3}
      rate: {parameterType: NUMBER_DOUBLE, defaultValue: 0.5}
      verbose: {parameterType: BOOLEAN, defaultValue: true}
schemaVersion: 2.1.0
sdkVersion: kfp-box-testdata
`;
}
