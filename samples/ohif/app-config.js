/** @type {AppTypes.Config} */
// OHIF Viewer v3 configuration for Orthanc with this DICOMweb plugin (orthanc-dicomweb, Python).
//
// The viewer and Orthanc's DICOMweb root are served from one origin (see nginx-site.conf beside
// this file), so every URL below is built from the page's own origin: the same file works on any
// host name and port, with no cross-origin requests (none of which OHIF 3 could make anyway
// under Cross-Origin-Embedder-Policy: require-corp without CORS headers on Orthanc).
window.config = {
  name: 'orthanc-dicomweb',
  routerBasename: '/',
  extensions: [],
  modes: [],
  customizationService: {},
  showStudyList: true,
  // Decoding runs in web workers; the default build caps them at 3.
  maxNumberOfWebWorkers: 3,
  showWarningMessageForCrossOrigin: true,
  showCPUFallbackMessage: true,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  groupEnabledModesFirst: true,
  maxNumRequests: {
    interaction: 100,
    thumbnail: 5,
    // A browser opens at most 6 HTTP/1.1 connections per origin: more parallel prefetches only
    // queue in the browser. Behind HTTP/2 (nginx with TLS) this can be raised.
    prefetch: 25,
  },
  showErrorDetails: 'always',
  defaultDataSourceName: 'orthanc',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'orthanc',
      configuration: {
        friendlyName: 'Orthanc DICOMweb (Python plugin)',
        name: 'orthanc',
        qidoRoot: window.location.origin + '/dicom-web',
        wadoRoot: window.location.origin + '/dicom-web',
        wadoUriRoot: window.location.origin + '/wado',
        // The plugin returns any attribute asked with includefield (indexed or not).
        qidoSupportsIncludeField: true,
        // Frames through WADO-RS Retrieve Frames, decoded in the browser.
        imageRendering: 'wadors',
        // Thumbnails rendered by the plugin (GET .../series/{uid}/thumbnail?viewport=256,256).
        thumbnailRendering: 'thumbnail',
        thumbnailRequestStrategy: 'fetch',
        // Series metadata is fetched when a series is opened, not all at once.
        enableStudyLazyLoad: true,
        // The plugin accepts fuzzymatching but matches exactly (with wildcards): say so.
        supportsFuzzyMatching: false,
        supportsWildcard: true,
        supportsReject: false,
        dicomUploadEnabled: true,
        // Bulk data (overlays, video, PDF...) through the BulkDataURIs of the metadata; the
        // plugin makes them absolute on this origin (it reads the proxy's Host header).
        bulkDataURI: {
          enabled: true,
          relativeResolution: 'studies',
        },
        // Orthanc's DICOMweb plugins read both forms; the unquoted one is what the official
        // C++ plugin 1.7 needs, so this file serves either plugin.
        omitQuotationForMultipartRequest: true,
      },
    },
  ],
  httpErrorHandler: error => {
    console.warn('DICOMweb request failed', error.status);
  },
};
